"""Decide a recipient's reason, status and class from all the evidence at once.

Every source of evidence (provider rows, diagnostic phrases, the enhanced
status code, the SMTP reply code, the SMTP command, the diagnostic's type, the
report's kind, the notice's family) proposes candidates with a priority from
the rules files; the highest wins and is named in `rule`. Phrase groups of
different reasons never share a priority (tests/test_rules.py), and between
sources an equal priority goes to the earlier source in that list, so an
outcome never depends on the order of a rules file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bounced.dsn.evidence import Finding
from bounced.dsn.fields import failure_status, unfold
from bounced.dsn.report import DEFAULT_HARD_REASONS, BounceClass, Kind, Reason
from bounced.rules import Family, Rules

__all__ = [
    "Classification",
    "best_status",
    "candidates",
    "classify",
    "for_good",
]


@dataclass(frozen=True, slots=True)
class Classification:
    reason: Reason
    rule: str
    status: str
    bounce_class: BounceClass


def best_status(finding: Finding, rules: Rules) -> str:
    """The code the refusing server gave in its own words, else the Status field:
    the reporting MTA often puts its own summary there (5.0.0, or 4.4.7 for a
    message that expired after a remote 4.4.2). A bare x.0.0 beside a diagnostic
    of a known type takes that type's detail (see status.toml)."""
    status = failure_status(finding.diagnostic) or finding.status
    detail = rules.diagnostic_details.get(finding.diagnostic_type)
    if detail and status[1:] == ".0.0":
        return f"{status[0]}.{detail}"
    return status


def _status_key(status: str) -> str:
    return "x" + status[1:] if status else ""


def _suffixes(*hosts: str) -> set[str]:
    """Every name a host sits under ("mx.mail.example.org": also "mail.example.org",
    "example.org", "org"), so that rules match hosts by suffix, never by substring."""
    out: set[str] = set()
    for host in hosts:
        labels = host.lower().rstrip(".").split(".")
        out.update(".".join(labels[i:]) for i in range(len(labels)))
    return out


#: Reply codes that start each line of a multi-line SMTP reply ("550-5.7.1 ...").
_LINE_CODES = re.compile(r"(?<=\s)[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s)?")


#: The words that hold an "@": addresses, whatever their shape.
_ADDRESS_WORDS = re.compile(r"[^\s<>()\[\]]*@[^\s<>()\[\]]*")


def _words(text: str) -> str:
    """The server's sentences without the codes that start each reply line, so
    that a phrase split across lines of a multi-line reply still matches."""
    return " ".join(_LINE_CODES.sub(" ", f" {text}").split())


def _said(text: str, command: str, rules: Rules) -> list[tuple[int, Reason, str]]:
    """The phrase candidates of a text, whose addresses are names, not words:
    "junkmail@example.org" says nothing about spam. The text is read again
    without its addresses only when a phrase found stands inside one."""
    words = _words(text)
    found = _phrases(words, command, rules)
    if found and "@" in words:
        names = " ".join(w for w in words.split(" ") if "@" in w)
        if any(rule.partition(":")[2] in names for _, _, rule in found):
            found = _phrases(_words(_ADDRESS_WORDS.sub(" ", text)), command, rules)
    return found


def _phrases(text: str, command: str, rules: Rules) -> list[tuple[int, Reason, str]]:
    """Phrase candidates; a phrase inside a longer matched phrase says less and
    drops out ("address rejected" inside "sender address rejected")."""
    matched = rules.phrase_scan.found(text)
    matched += [
        p.regex.pattern for p in rules.pattern_list if p.needs in text and p.regex.search(text)
    ]
    hits = [(*rules.phrase_index[p], p) for p in matched]
    kept = []
    for priority, reason, phrase in hits:
        if any(phrase != other and phrase in other for other in matched):
            continue
        for recast in rules.recasts:
            if phrase in recast.phrases and command in recast.commands:
                reason = recast.becomes
        kept.append((priority, reason, f"phrase:{phrase}"))
    return kept


def _providers(
    finding: Finding, status: str, text: str, rules: Rules
) -> list[tuple[int, Reason, str]]:
    """Candidates of the provider rows whose host or recipient domain matches."""
    hosts = [h.lower().rstrip(".") for h in (finding.remote_mta, finding.reporting_mta) if h]
    domain = finding.recipient.rpartition("@")[2].lower()
    if not any(h.endswith(rules.provider_suffixes) for h in (*hosts, domain)):
        return []  # the common case, decided without building suffix sets
    host_names, domain_names = _suffixes(*hosts), _suffixes(domain)
    return [
        (row.priority, row.reason, f"provider:{row.name}")
        for row in rules.providers
        if not (host_names.isdisjoint(row.hosts) and domain_names.isdisjoint(row.domains))
        and (not row.reply_codes or finding.reply_code in row.reply_codes)
        and (not row.statuses or status in row.statuses)
        and (not row.phrases or any(p in text for p in row.phrases))
    ]


def candidates(
    finding: Finding, status: str, kind: Kind, family: Family | None, rules: Rules
) -> list[tuple[int, Reason, str]]:
    """Every (priority, reason, rule) the evidence supports."""
    own = unfold(finding.diagnostic).lower()
    text = f"{own} {finding.context.lower()}"
    found = _providers(finding, status, text, rules)
    # The recipient's own text first; the rest of its notice only when that
    # text names no reason (it is longer, and it may speak of other things).
    phrases = _said(own, finding.smtp_command, rules) if own else []
    if not phrases and finding.context:
        phrases = _said(finding.context.lower(), finding.smtp_command, rules)
    found.extend(phrases)
    if status and (entry := rules.statuses.get(_status_key(status))):
        found.append((entry[1], entry[0], f"status:{status}"))
    if finding.reply_code and (entry := rules.replies.get(finding.reply_code)):
        found.append((entry[1], entry[0], f"reply:{finding.reply_code}"))
    if finding.smtp_command and (entry := rules.commands.get(finding.smtp_command)):
        found.append((entry[1], entry[0], f"command:{finding.smtp_command}"))
    if entry := rules.diagnostic_types.get(finding.diagnostic_type):
        found.append((entry[1], entry[0], f"diagnostic-type:{finding.diagnostic_type}"))
    if entry := rules.kinds.get(kind.value):
        found.append((entry[1], entry[0], f"kind:{kind.value}"))
    if family and family.reason:
        found.append((family.priority, family.reason, f"family:{family.name}"))
    return found


def classify(finding: Finding, kind: Kind, family: Family | None, rules: Rules) -> Classification:
    """Reason, status and class for one failed or delayed recipient."""
    status = best_status(finding, rules)
    found = candidates(finding, status, kind, family, rules)
    if found:
        _, reason, rule = max(found, key=lambda c: c[0])
    else:
        reason, rule = Reason.UNDEFINED, "none"
    if family and reason in family.reads and rule.startswith("phrase:"):
        reason, rule = family.reads[reason], f"{rule}+family:{family.name}"
    permanent = _permanent(status, finding, kind, family)
    hard = permanent and reason in DEFAULT_HARD_REASONS
    coded = bool(status or finding.reply_code)  # a code the server gave, not derived
    if coded and permanent and not hard and (evidence := for_good(reason, finding, rules)):
        hard, rule = True, f"{rule}+hard:{evidence}"
    if not status:
        status = _derived_status(permanent, reason, finding.smtp_command, family, rules)
    return Classification(reason, rule, status, BounceClass.HARD if hard else BounceClass.SOFT)


def for_good(reason: Reason, finding: Finding, rules: Rules) -> str:
    """The words that make a permanent failure of this reason hard (the account
    is closed for good, reasons.toml [[hard_when]]); "" when none say so or
    words of a passing state ("temporarily", "locked") stand beside them."""
    ruled = [rule for rule in rules.hard_when if rule.reason is reason]
    if not ruled:
        return ""
    text = f"{unfold(finding.diagnostic)} {finding.context}".lower()
    for rule in ruled:
        if not any(u in text for u in rule.unless):
            found = next((p for p in rule.phrases if p in text), "")
            if found:
                return found
    return ""


def _derived_status(
    permanent: bool, reason: Reason, command: str, family: Family | None, rules: Rules
) -> str:
    """The code for a failure no server gave one for (status.toml, [derived])."""
    subject = family.derived_after_command.get(command, reason) if family else reason
    return f"{'5' if permanent else '4'}.0.{rules.derived.get(subject, 900)}"


def _permanent(status: str, finding: Finding, kind: Kind, family: Family | None) -> bool:
    if status:
        return status[0] == "5"
    if finding.reply_code:
        return finding.reply_code[0] == "5"
    if kind is not Kind.FAILED:
        return False
    text = finding.diagnostic.lower()
    return not (family and any(p in text for p in family.temporary))
