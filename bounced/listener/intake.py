"""From a spooled message to the store: VERP first, then the parse, then the policy.

The listener's worker calls `intake` for every message it claims from the
spool. A valid VERP token in the envelope recipient says exactly who bounced
and for which message, so it beats whatever the parser read from the body (and
stands in for it when the body is unreadable). A bad or forged token is logged
and the message is kept in the spool's `suspect/`; with `[verp] strict` only
bounces with a valid token count at all. Messages that are not bounces go to
the inbox. Everything here is idempotent: the store refuses a row recorded
twice and the inbox a spool id kept twice, so a message handed over again after
a crash never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from bounced import verp
from bounced.config import VerpSettings
from bounced.dsn import Bounce, Kind, Report, parse
from bounced.listener.inbox import Inbox
from bounced.listener.spool import Spooled

__all__ = ["Intake", "Route", "find_token", "intake", "with_recipient"]

#: The detector named on rows that only the VERP token (or an admin) supplied.
VERP_DETECTOR = "verp"


class Route(StrEnum):
    """Where a spooled message went."""

    INGESTED = "ingested"  # recorded (or found recorded before)
    INBOX = "inbox"  # not a bounce, or unreadable: kept aside, not counted
    SUSPECT = "suspect"  # strict VERP: a bounce without a valid token, not counted


@dataclass(frozen=True, slots=True)
class Intake:
    """What became of one spooled message (for the log and the spool's clean-up)."""

    route: Route
    outcome: str = ""
    token: verp.Token | None = None
    rows: int = 0
    new_blocks: tuple[str, ...] = ()
    detail: str = ""

    @property
    def suspect(self) -> bool:
        return self.route is Route.SUSPECT or (self.token is not None and not self.token.valid)


def find_token(rcpt_tos: tuple[str, ...], settings: VerpSettings) -> verp.Token | None:
    """The first VERP token among the envelope recipients (a valid one preferred)."""
    tokens = [
        t
        for r in rcpt_tos
        if (t := verp.decode(r, secret=settings.secret, prefix=settings.prefix)) is not None
    ]
    return next((t for t in tokens if t.valid), tokens[0] if tokens else None)


def with_recipient(report: Report, recipient: str, message_key: str, *, detector: str) -> Report:
    """The report as being about `recipient` (and the original `message_key`, when given):
    rows naming that recipient are kept, otherwise every row is re-addressed; a report
    without rows gets one failed row (the body said nothing usable). The key is kept
    the way the parser keeps Message-IDs: without its angle brackets."""
    message_key = message_key.strip().strip("<>").strip()
    if not report.bounces:
        kind = report.kind or Kind.FAILED
        row = Bounce(recipient, kind, original_message_id=message_key, detector=detector)
        return replace(report, kind=kind, bounces=(row,))
    same = tuple(b for b in report.bounces if b.recipient.lower() == recipient.lower())
    key = {"original_message_id": message_key} if message_key else {}
    rows = same or tuple(replace(b, recipient=recipient) for b in report.bounces)
    unique = tuple(dict.fromkeys(replace(b, **key) for b in rows))
    return replace(report, bounces=unique)


def intake(item: Spooled, inbox: Inbox, settings: VerpSettings) -> Intake:
    """Ingest one spooled message (or keep it aside). Safe to repeat."""
    from bounced.metrics import count_ingested
    from bounced.suppressions import Outcome

    report = parse(item.raw)
    token = find_token(item.envelope.rcpt_tos, settings)
    if report.is_bounce and token is not None and token.valid:
        report = with_recipient(report, token.recipient, token.message_key, detector=VERP_DETECTOR)
    elif report.is_bounce and settings.strict:
        why = token.reason if token else "no VERP token"
        return Intake(Route.SUSPECT, token=token, detail=f"strict VERP: {why}")
    source = f"smtp:{item.id}"
    (result,) = inbox.sup.ingest_reports(
        [(source, item.raw, report)], received_at=item.envelope.received_at
    )
    count_ingested([result])
    if result.outcome in (Outcome.NOT_BOUNCE, Outcome.UNREADABLE):
        reason = "; ".join([str(result.outcome), *result.problems])
        inbox.add(item.id, item.envelope, item.raw, subject=report.subject, reason=reason)
        return Intake(Route.INBOX, str(result.outcome), token, detail=reason)
    return Intake(
        Route.INGESTED,
        str(result.outcome),
        token,
        rows=len(result.rows),
        new_blocks=tuple(result.new_blocks),
    )
