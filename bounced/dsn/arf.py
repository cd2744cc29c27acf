"""Complaints: RFC 5965 Abuse Reporting Format feedback reports."""

from __future__ import annotations

from bounced.dsn.evidence import Finding
from bounced.dsn.fields import ADDRESS, clean_address, field_groups
from bounced.dsn.mime import Mail

REPORT_TYPE = "message/feedback-report"


def findings(mail: Mail) -> list[Finding]:
    """One finding per complained-about recipient; empty when not a report."""
    parts = list(mail.parts_of(REPORT_TYPE))
    if not parts:
        return []
    fields: dict[str, str] = {}
    for group in field_groups(parts[0].text):
        for name, value in group.items():
            fields.setdefault(name, value)
    recipients = _recipients(parts[0].text, mail)
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


def _recipients(report: str, mail: Mail) -> list[str]:
    """Every Original-Rcpt-To when the reporter kept it, else the original's To."""
    found = [
        clean_address(line.partition(":")[2])
        for line in report.split("\n")
        if line[:16].lower() == "original-rcpt-to"
    ]
    found = [a for a in found if a]
    if not found:
        found = ADDRESS.findall(mail.original.get("to"))
    return list(dict.fromkeys(a.lower() for a in found))
