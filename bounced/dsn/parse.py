"""The one place where the layers' evidence is gathered and merged into a `Report`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bounced.dsn import arf, autoreply, rfc3464, ses, text
from bounced.dsn.address import addresses
from bounced.dsn.classify import classify
from bounced.dsn.evidence import Finding
from bounced.dsn.fields import failure_reply_code, failure_status, smtp_command
from bounced.dsn.mime import Headers, Mail, header_block, read
from bounced.dsn.report import Bounce, Kind, Report
from bounced.rules import Family, Rules, load

__all__ = ["Evidence", "gather", "parse", "report", "senders"]

_KINDS = {k.value: k for k in Kind}
#: How much of a notice is searched for a failure code when only its subject
#: says it is a returned message.
_EVIDENCE_SPAN = 8192
#: How much of a quoted original is read for its sender's headers (they stand
#: in its header block, after the Received lines).
_QUOTED_SENDER_SPAN = 8192


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the layers found in one message, before any reason is decided:
    `parse` turns it into a `Report`, `bounced.dsn.explain` shows how."""

    mail: Mail
    rows: tuple[Finding, ...] = ()  # one per recipient
    kind: Kind | None = None  # the report's kind when the layer knows it
    detector: str = ""
    notice: text.Notice | None = None
    why: str = ""  # what a report without rows says of itself

    def family(self, rules: Rules) -> Family | None:
        return rules.family(self.notice.family) if self.notice else None


def parse(raw: bytes | str) -> Report:
    """Parse one message. Never raises for any input: whatever went wrong is in
    `problems`. (Broken rules files do raise `RulesError`: that is a deployment
    error, not a message's.)"""
    rules = load()
    try:
        return report(gather(read(raw), rules), rules)
    except Exception as exc:  # the contract is a Report for any input, even on our own bugs
        return Report(kind=None, problems=(f"parser error: {exc.__class__.__name__}: {exc}",))


def gather(mail: Mail, rules: Rules, nested: bool = False) -> Evidence:
    """Ask the layers in turn; the first that recognises the message says what it holds."""
    feedback = arf.report_text(mail, rules)
    complaints = arf.findings(mail, rules, feedback)
    if complaints:
        return _evidence(mail, complaints, Kind.COMPLAINT, "arf")
    if feedback:
        # A complaint that names nobody (the original went to undisclosed
        # recipients): still a complaint, never a bounce.
        return Evidence(
            mail, kind=Kind.COMPLAINT, detector="arf", why="complaint names no recipient"
        )
    notification = ses.findings(mail)
    if notification:
        kind = Kind.COMPLAINT if notification[0].feedback_type else None
        return _evidence(mail, notification, kind, "amazonses")
    notice = text.notice(mail, rules)
    status_rows = rfc3464.findings(mail)
    if not (status_rows or notice.family) and _challenge(mail, notice, rules):
        return Evidence(mail, notice=notice, why="challenge-response request: not a bounce")
    returned = bool(notice.family) or _looks_returned(mail, notice, rules)
    status_rows = status_rows or (_inline_fields(mail) if returned else [])
    if status_rows:
        rows = _with_notice(status_rows, mail, rules, notice)
        return _evidence(mail, rows, None, "rfc3464", notice)
    if returned:
        notice = text.without_footers(notice, rules)
        detector = notice.family or "text"
        rows = text.findings(mail, rules, notice, lambda: senders(mail, notice))
        if rows:
            return _evidence(mail, rows, None, detector, notice)
        if not nested and mail.original_raw:
            inner = gather(read(mail.original_raw), rules, nested=True)
            if inner.rows:
                return inner
        rows = _original_recipients(mail, notice, rules)
        if rows:
            return _evidence(mail, rows, None, detector, notice)
    responder = "" if _from_daemon(mail, rules) else autoreply.responder(mail, rules)
    if responder:
        row = Finding(recipient=responder.lower(), source="rfc3834")
        return _evidence(mail, [row], Kind.AUTOREPLY, "rfc3834", notice)
    return Evidence(mail, notice=notice, why="not a bounce, complaint or auto-reply")


def _evidence(
    mail: Mail,
    rows: list[Finding],
    kind: Kind | None,
    detector: str,
    notice: text.Notice | None = None,
) -> Evidence:
    return Evidence(mail, tuple(_unique(rows)), kind, detector, notice)


def report(evidence: Evidence, rules: Rules) -> Report:
    """The rows of the evidence, each with its reason and class decided."""
    mail = evidence.mail
    if not evidence.rows:
        return _not_a_row(mail, evidence.kind, evidence.detector, evidence.why)
    notice = evidence.notice
    original_id = (
        text.original_message_id(notice, mail.original)
        if notice
        else mail.original.get("message-id")
    )
    original_sender = mail.original.get("from") or mail.original.get("return-path")
    family = evidence.family(rules)
    bounces = tuple(
        _bounce(row, evidence.kind, evidence.detector, original_id, original_sender, family, rules)
        for row in evidence.rows
    )
    return Report(
        kind=evidence.kind or _report_kind(bounces),
        bounces=bounces,
        detector=evidence.detector,
        message_id=mail.headers.get("message-id"),
        subject=mail.headers.get("subject"),
        problems=mail.problems,
    )


def _not_a_row(mail: Mail, kind: Kind | None, detector: str, why: str) -> Report:
    """A report without rows, saying why it has none."""
    return Report(
        kind=kind,
        detector=detector,
        message_id=mail.headers.get("message-id"),
        subject=mail.headers.get("subject"),
        problems=(*mail.problems, why),
    )


def _challenge(mail: Mail, notice: text.Notice, rules: Rules) -> bool:
    """A challenge-response system asking the sender to prove it is a person
    (asked only of messages that no MTA family wrote and that carry no DSN)."""
    marks = rules.challenge
    sender = mail.headers.get("from").lower()
    subject = mail.headers.get("subject").lower()
    head = notice.text[:4096].lower()
    return (
        any(s in sender for s in marks["senders"])
        or any(s in subject for s in marks["subjects"])
        or any(m in head for m in marks["markers"])
    )


def _inline_fields(mail: Mail) -> list[Finding]:
    """DSN fields written into a text part by an MTA that got the MIME wrong."""
    return [
        f
        for p in mail.parts_of("text/")
        if rfc3464.names_recipients(p.text)
        for f in rfc3464.from_fields(p.text, "rfc3464")
    ]


def _original_recipients(mail: Mail, notice: text.Notice, rules: Rules) -> list[Finding]:
    """A notice that names nobody failed for the original's recipients."""
    headers = _original_headers(mail, notice)
    return text.about(addresses(headers.get("to")), notice, rules)


def _original_headers(mail: Mail, notice: text.Notice) -> Headers:
    """The returned original's headers: attached, else quoted after the notice."""
    return mail.original or header_block(text.quoted_headers(notice))


def _from_daemon(mail: Mail, rules: Rules) -> bool:
    sender = mail.headers.get("from").lower()
    return any(s in sender for s in rules.returned["senders"])


def _looks_returned(mail: Mail, notice: text.Notice, rules: Rules) -> bool:
    """A mailer daemon wrote it, or its subject says so (a person's reply or
    forward that quotes such a subject is none) and it carries what a returned
    message does: the original, or a server's failure code. Spam that lands on
    the return path has subjects like "payment failed" too, but neither."""
    if _from_daemon(mail, rules):
        return True
    subject = mail.headers.get("subject").lower().lstrip()
    marks = rules.returned
    if subject.startswith(marks["reply_prefixes"]) or not any(
        s in subject for s in marks["subjects"]
    ):
        return False
    said = notice.text[:_EVIDENCE_SPAN]
    return bool(mail.original or notice.rest or failure_status(said) or failure_reply_code(said))


def senders(mail: Mail, notice: text.Notice) -> frozenset[str]:
    """Addresses of the original's sender side: never the failed recipient. The
    notice's own To, Delivered-To and X-Original-To are the return path (a VERP
    address among them); the original's From, Sender, Reply-To and Return-Path
    are who sent it (its quoted headers when it is not attached, read only when
    the notice names more than one address: else there is nothing to choose)."""
    original = mail.original
    if not original and notice.rest and notice.text.count("@") > 1:
        original = header_block(text.quoted_headers(notice)[:_QUOTED_SENDER_SPAN])
    values = {
        *(mail.headers.get(h) for h in ("to", "from", "delivered-to", "x-original-to")),
        *(original.get(h) for h in ("from", "sender", "reply-to", "return-path")),
    }
    return frozenset(a for v in values if "@" in v for a in addresses(v))


def _with_notice(
    rows: list[Finding], mail: Mail, rules: Rules, notice: text.Notice
) -> list[Finding]:
    """Status-part findings completed from the notice, which is read only for
    what the part leaves open. One recipient with a diagnostic needs at most
    the SMTP command, which the notice's transcript gives for the whole message."""
    if all(r.diagnostic for r in rows) and len(rows) == 1:
        if rows[0].smtp_command:
            return rows
        return [replace(rows[0], smtp_command=smtp_command(notice.text.lower()))]
    notice = text.without_footers(notice, rules)
    return _merge(rows, text.findings(mail, rules, notice, lambda: senders(mail, notice)))


def _merge(primary: list[Finding], extra: list[Finding]) -> list[Finding]:
    """Status-part findings, each with gaps filled from the text about the same
    recipient; the text's diagnostic wins when the part's is empty."""
    by_recipient = {a.lower(): f for f in extra for a in (f.final_recipient, f.recipient) if a}
    merged = []
    for finding in primary:
        other = by_recipient.get(finding.recipient.lower()) or by_recipient.get(
            finding.final_recipient.lower() or finding.recipient.lower()
        )
        merged.append(finding.merged(other) if other else finding)
    return _unique(merged)


def _unique(rows: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for row in rows:
        key = row.recipient.lower()
        seen[key] = seen[key].merged(row) if key in seen else row
    return list(seen.values())


def _report_kind(bounces: tuple[Bounce, ...]) -> Kind:
    kinds = [b.kind for b in bounces]
    for kind in (Kind.FAILED, Kind.DELAYED, Kind.DELIVERED, Kind.RELAYED, Kind.EXPANDED):
        if kind in kinds:
            return kind
    return Kind.FAILED


def _row_kind(finding: Finding) -> Kind:
    if finding.action in _KINDS:
        return _KINDS[finding.action]
    if finding.status[:1] == "4":
        return Kind.DELAYED
    if finding.status[:1] == "2":
        return Kind.DELIVERED
    return Kind.FAILED


def _bounce(
    finding: Finding,
    kind: Kind | None,
    detector: str,
    original_id: str,
    original_sender: str,
    family: Family | None,
    rules: Rules,
) -> Bounce:
    row_kind = kind or _row_kind(finding)
    common: dict[str, Any] = dict(
        recipient=finding.recipient,
        final_recipient=finding.final_recipient,
        kind=row_kind,
        status=finding.status,
        reply_code=finding.reply_code,
        diagnostic=finding.diagnostic,
        remote_mta=finding.remote_mta,
        reporting_mta=finding.reporting_mta,
        original_message_id=original_id,
        original_sender=original_sender,
        feedback_type=finding.feedback_type,
        arrival_date=finding.arrival_date,
        action=finding.action,
        smtp_command=finding.smtp_command,
        detector=detector if finding.source in ("", detector) else f"{detector}+{finding.source}",
    )
    if row_kind not in (Kind.FAILED, Kind.DELAYED):
        return Bounce(**common)
    decision = classify(finding, row_kind, family, rules)
    common.update(status=decision.status, rule=decision.rule)
    return Bounce(**common, reason=decision.reason, bounce_class=decision.bounce_class)
