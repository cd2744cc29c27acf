"""RFC 3464 / RFC 6533 delivery status notifications: the machine-readable part.

Real DSNs are often incomplete (empty Diagnostic-Code, a Status of 5.0.0, the
recipient only in Original-Recipient); this layer reports what the fields say
and leaves the weighing to the merge step.
"""

from __future__ import annotations

import re

from bounced.dsn.address import clean_address, encapsulated
from bounced.dsn.evidence import Finding
from bounced.dsn.fields import (
    failure_reply_code,
    field_groups,
    first_reply_code,
    first_status,
    remote_host,
    smtp_command,
    typed_value,
)
from bounced.dsn.mime import Mail

__all__ = ["STATUS_TYPES", "findings", "from_fields", "names_recipients"]

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
#: Where a group names its recipient, the address the sender mailed first (RFC
#: 3464: Original-Recipient is the address of the RCPT TO, Final-Recipient the
#: one after aliasing and forwarding).
_RECIPIENT_FIELDS = ("original-recipient", "final-recipient", "x-actual-recipient")
_RECIPIENT_FIELD = re.compile(r"^(?:final|original)-recipient[ \t]*:", re.IGNORECASE | re.MULTILINE)


def names_recipients(text: str) -> bool:
    """Whether a text holds DSN recipient fields at all (a cheap test before parsing)."""
    return _RECIPIENT_FIELD.search(text) is not None


def findings(mail: Mail) -> list[Finding]:
    """One finding per recipient group of every delivery-status part."""
    out: list[Finding] = []
    for part in mail.parts_of(*STATUS_TYPES):
        out.extend(from_fields(part.text, "rfc3464"))
    return out


def _diagnostic_type(code: str, group: dict[str, str]) -> str:
    """The Diagnostic-Code's type ("smtp", "x-unix"). A recipient delivered to a
    program ("|/usr/bin/procmail ...") failed in that program: its diagnostic is
    a Unix program's, whatever type the field names, if it names any."""
    named = code.partition(";")[0].strip().lower() if ";" in code else ""
    delivered_to = typed_value(group.get("x-actual-recipient", ""))
    return named or ("x-unix" if delivered_to.startswith("|") else "")


def from_fields(text: str, source: str) -> list[Finding]:
    """Findings from DSN field groups in any text (a status part, or a text part
    into which a broken MTA wrote the fields)."""
    groups = field_groups(text)
    per_message: dict[str, str] = {}
    out: list[Finding] = []
    for group in groups:
        original, final = (clean_address(group.get(f, "")) for f in _RECIPIENT_FIELDS[:2])
        final = final or clean_address(group.get(_RECIPIENT_FIELDS[2], ""))
        if encapsulated(original) and final:
            original = ""  # Exchange's X.500 form of an address, never one that was mailed
        recipient = original or final
        if not recipient:
            if not out:
                per_message.update(group)
            continue
        code = group.get("diagnostic-code", "")
        diagnostic = typed_value(code)
        said = diagnostic.lower()
        status = first_status(group.get("status", ""))
        out.append(
            Finding(
                recipient=recipient,
                final_recipient=final if final.lower() != recipient.lower() else "",
                diagnostic_type=_diagnostic_type(code, group),
                action=group.get("action", "").split()[0].lower() if group.get("action") else "",
                status=status,
                reply_code=failure_reply_code(diagnostic) or first_reply_code(diagnostic),
                smtp_command=smtp_command(said),
                diagnostic=diagnostic,
                remote_mta=typed_value(group.get("remote-mta", "")) or remote_host(said),
                reporting_mta=typed_value(
                    group.get("reporting-mta", per_message.get("reporting-mta", ""))
                ),
                arrival_date=group.get("last-attempt-date") or per_message.get("arrival-date", ""),
                source=source,
            )
        )
    return out
