"""Auto-replies (RFC 3834 and the headers and subjects vendors use instead)."""

from __future__ import annotations

from bounced.dsn.address import clean_address
from bounced.dsn.mime import Mail
from bounced.rules import Rules

__all__ = ["responder"]


def responder(mail: Mail, rules: Rules) -> str:
    """The address that answered automatically, or "" when this is no auto-reply."""
    marks = rules.autoreply
    headers = mail.headers
    submitted = headers.get("auto-submitted").lower()
    subject = headers.get("subject").lower().lstrip()
    if not (
        submitted.startswith("auto-replied")
        or any(h in headers for h in marks["headers"])
        or headers.get("precedence").lower() in marks["precedence"]
        or subject.startswith(marks["subjects"])
    ):
        return ""
    return clean_address(headers.get("reply-to") or headers.get("from")) or clean_address(
        headers.get("return-path")
    )
