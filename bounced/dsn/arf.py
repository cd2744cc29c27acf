"""Complaints: RFC 5965 Abuse Reporting Format feedback reports, and the
providers' older complaint mails that carry the original without a report."""

from __future__ import annotations

import re
from functools import cache

from bounced.dsn.address import addresses, clean_address
from bounced.dsn.evidence import Finding
from bounced.dsn.fields import field_groups
from bounced.dsn.mime import Mail
from bounced.rules import Rules

__all__ = ["REPORT_TYPE", "findings", "report_text"]

REPORT_TYPE = "message/feedback-report"
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
#: A report written into a text part gives its fields in the part's first lines.
_HEAD = 4096


def report_text(mail: Mail, rules: Rules) -> str:
    """The feedback report's fields: its own part, else a text part that a
    provider's loop wrote them into (a line starting with "Feedback-Type:")."""
    part = next(mail.parts_of(REPORT_TYPE), None)
    if part is not None:
        return part.text
    if next(mail.parts_of(*_DSN_TYPES), None) is not None:
        return ""  # a delivery report, not a complaint
    names = rules.complaint["report_fields"]
    spellings = _spellings(names)
    for part in mail.parts_of("text/plain"):
        text = part.text
        found = any(text.find(s, 0, _HEAD) >= 0 for s in spellings)
        if found and _field_lines(names).search(text, 0, _HEAD):
            return text
    return ""


@cache
def _spellings(names: tuple[str, ...]) -> tuple[str, ...]:
    """The field names as reports write them, for a quick look before the pattern."""
    return tuple({spelled for n in names for spelled in (n, n.title(), n.upper())})


@cache
def _field_lines(names: tuple[str, ...]) -> re.Pattern[str]:
    """Lines that start with one of the report's field names."""
    return re.compile("|".join(f"^{re.escape(n)}" for n in names), re.IGNORECASE | re.MULTILINE)


def findings(mail: Mail, rules: Rules, report: str) -> list[Finding]:
    """One finding per complained-about recipient of the report (`report_text`),
    or of a complaint mail without one; empty when not a complaint."""
    if not report:
        return _unformatted(mail, rules)
    fields: dict[str, str] = {}
    for group in field_groups(report):
        for name, value in group.items():
            fields.setdefault(name, value)
    recipients = _reported(report) or _original_recipients(mail, ("to",))
    return [
        Finding(
            recipient=r,
            feedback_type=fields.get("feedback-type", "abuse").lower() or "abuse",
            reporting_mta=fields.get("reporting-mta", "").partition(";")[2].strip(),
            arrival_date=fields.get("arrival-date", fields.get("received-date", "")),
            source="arf",
        )
        for r in recipients
    ]


def _unformatted(mail: Mail, rules: Rules) -> list[Finding]:
    """A complaint mail recognised by its sender or subject (rules: [complaint])."""
    marks = rules.complaint
    if any(h in mail.headers for h in marks["unsubscribe_headers"]):
        sender = clean_address(mail.headers.get("from")).lower()
        return [Finding(recipient=sender, feedback_type="opt-out", source="arf")] if sender else []
    sender = mail.headers.get("from").lower()
    subject = mail.headers.get("subject").lower()
    if not (any(s in sender for s in marks["senders"]) or subject.startswith(marks["subjects"])):
        return []
    return [
        Finding(recipient=r, feedback_type="abuse", source="arf")
        for r in _original_recipients(mail, marks["recipient_headers"])
    ]


def _reported(report: str) -> list[str]:
    """Every Original-Rcpt-To field of the report (it may repeat)."""
    found = [
        clean_address(line.partition(":")[2])
        for line in report.split("\n")
        if line[:16].lower() == "original-rcpt-to"
    ]
    return list(dict.fromkeys(a.lower() for a in found if a))


def _original_recipients(mail: Mail, headers: tuple[str, ...]) -> list[str]:
    """Recipients named by the first of `headers` present in the returned original."""
    for name in headers:
        found = addresses(mail.original.get(name))
        if found:
            return found
    return []
