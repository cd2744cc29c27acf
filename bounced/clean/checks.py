"""The checks of `bounced clean`, as pure functions of one address (or one answer).

Each check returns a Finding or None (nothing to say). A row's verdict is the
worst of its findings: reject > unknown > risky > ok, so an address that is both
a role account (risky) and on a domain that does not exist (reject) is a reject,
and its detail still names both. Nothing here does I/O: the suppression store and
DNS are asked at the edge (bounced.clean.pipeline, bounced.clean.dns) and their answers
come here to be judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from publicsuffixlist import PublicSuffixList

from bounced.clean.dns import MailAnswer, MailKind
from bounced.clean.kinds import CleanReason, Mode, Status
from bounced.clean.rules import CleanRules
from bounced.policy import BlockReason, State

__all__ = [
    "CleanReason",
    "DisposableDomains",
    "Finding",
    "Mode",
    "Status",
    "Typos",
    "disposable_finding",
    "dns_finding",
    "is_role",
    "role_finding",
    "suppression_finding",
    "typo_finding",
    "verdict",
]


_SEVERITY = {Status.OK: 0, Status.RISKY: 1, Status.UNKNOWN: 2, Status.REJECT: 3}


class Finding(NamedTuple):
    status: Status
    reason: CleanReason
    detail: str


def verdict(findings: Iterable[Finding]) -> tuple[Status, str, str]:
    """(status, reason, detail) of a row: the worst finding's status and reason (the
    first one found on a tie), and every finding's detail in check order."""
    worst: Finding | None = None
    details = []
    for f in findings:
        if worst is None or _SEVERITY[f.status] > _SEVERITY[worst.status]:
            worst = f
        details.append(f.detail)
    if worst is None:
        return Status.OK, "", ""
    return worst.status, worst.reason.value, "; ".join(details)


class Typos:
    """Suggestions for domains one or two edits away from a common one (cached per
    domain: a list has far fewer domains than rows)."""

    def __init__(self, rules: CleanRules) -> None:
        self._common = rules.common_domains
        self._limit = rules.max_typo_distance
        self._cache: dict[str, str | None] = {}

    def suggestion(self, domain: str) -> str | None:
        """The common domain `domain` is likely a typo of, or None."""
        try:
            return self._cache[domain]
        except KeyError:
            pass
        found = None
        if domain not in self._common:
            near = [
                (_distance(domain, c, self._limit), c)
                for c in sorted(self._common)
                if abs(len(c) - len(domain)) <= self._limit
            ]
            near = [(d, c) for d, c in near if d <= self._limit]
            found = min(near)[1] if near else None
        self._cache[domain] = found
        return found


def _distance(a: str, b: str, limit: int) -> int:
    """Edits from a to b (insert, delete, change, swap two neighbours: the optimal
    string alignment distance), or limit + 1 once it is certainly beyond `limit`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class DisposableDomains:
    """Throw-away mailbox domains (the `disposable-email-domains` list), matched on the
    domain and each parent above its public suffix: `x.mailinator.com` is one, `co.uk`
    never is."""

    def __init__(self, domains: Iterable[str] | None = None) -> None:
        if domains is None:
            from disposable_email_domains import blocklist

            domains = blocklist
        self._domains = frozenset(domains)
        self._psl = PublicSuffixList()
        self._cache: dict[str, str | None] = {}

    def match(self, domain: str) -> str | None:
        """The listed domain that `domain` is or is under, or None."""
        try:
            return self._cache[domain]
        except KeyError:
            pass
        found = None
        suffix = self._psl.publicsuffix(domain) or ""
        name = domain
        while name and name != suffix:
            if name in self._domains:
                found = name
                break
            name = name.partition(".")[2]
        self._cache[domain] = found
        return found


def is_role(local: str, roles: frozenset[str]) -> bool:
    """A function's mailbox (`info`, `no-reply`), also with a +tag (`info+shop`)."""
    return local.partition("+")[0].lower() in roles


def _mode_status(mode: Mode) -> Status:
    return Status.REJECT if mode == Mode.REJECT else Status.RISKY


def role_finding(mode: Mode) -> Finding:
    return Finding(_mode_status(mode), CleanReason.ROLE_ACCOUNT, "role account")


def disposable_finding(mode: Mode, listed: str) -> Finding:
    return Finding(
        _mode_status(mode), CleanReason.DISPOSABLE_DOMAIN, f"disposable domain ({listed})"
    )


def typo_finding(local: str, suggestion: str) -> Finding:
    return Finding(Status.RISKY, CleanReason.LIKELY_TYPO, f"did you mean {local}@{suggestion}?")


def suppression_finding(state: str, blocked_reason: str, soft_returns: bool) -> Finding | None:
    """What the store's row says: a block is a reject, recent soft returns are risky."""
    if state == State.FORMER_EMPLOYEE:
        return Finding(Status.REJECT, CleanReason.FORMER_EMPLOYEE, "former employee")
    if state == State.BLOCKED:
        if blocked_reason == BlockReason.COMPLAINT:
            return Finding(Status.REJECT, CleanReason.COMPLAINT, "complained (spam report)")
        return Finding(Status.REJECT, CleanReason.BLOCKED, f"blocked ({blocked_reason})")
    if soft_returns:
        return Finding(Status.RISKY, CleanReason.SOFT_RETURNS, "recent soft returns")
    return None


_DNS = {
    MailKind.NXDOMAIN: (Status.REJECT, CleanReason.NO_SUCH_DOMAIN, "domain does not exist"),
    MailKind.NULL_MX: (Status.REJECT, CleanReason.NULL_MX, "domain accepts no mail (null MX)"),
    MailKind.NO_MAIL: (
        Status.REJECT,
        CleanReason.NO_MAIL_SERVER,
        "domain has no MX, A or AAAA record",
    ),
    MailKind.TIMEOUT: (Status.UNKNOWN, CleanReason.DNS_TIMEOUT, "dns timeout"),
    MailKind.SERVFAIL: (Status.UNKNOWN, CleanReason.DNS_TIMEOUT, "dns timeout (SERVFAIL)"),
}


def dns_finding(answer: MailAnswer) -> Finding | None:
    """A domain that cannot receive mail is a reject; one DNS could not answer for is
    unknown (try again later), never a reject."""
    judged = _DNS.get(answer.kind)
    return None if judged is None else Finding(*judged)
