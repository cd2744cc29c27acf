"""The policy delegation protocol of Postfix, as pure functions.

A request is `name=value` lines ended by an empty line; the answer is one
`action=...` line and an empty line; the connection stays open for the next
request. Unknown attributes are ignored (Postfix adds some in every release). Only
`protocol_state=RCPT` with a `recipient` is looked at; everything else is DUNNO
(no opinion: Postfix's other restrictions decide).
"""

from __future__ import annotations

from collections.abc import Mapping

from bounced.suppressions import Check

__all__ = ["DUNNO", "answer", "parse", "recipient_of", "refusal", "unavailable"]

DUNNO = "DUNNO"
#: Actions that take a text after them; bounced fills in a standard one.
_WITH_TEXT = {
    "REJECT": "REJECT 5.1.1",
    "DEFER": "DEFER 4.1.1",
    "DEFER_IF_PERMIT": "DEFER_IF_PERMIT 4.1.1",
    "HOLD": "HOLD",
    "WARN": "WARN",
}


def parse(block: bytes) -> dict[str, str]:
    """The attributes of one request (the lines before the empty one); a line without
    `=` is ignored like an unknown attribute."""
    attrs: dict[str, str] = {}
    for line in block.decode("utf-8", "surrogateescape").splitlines():
        name, eq, value = line.partition("=")
        if eq:
            attrs[name.strip()] = value
    return attrs


def recipient_of(attrs: Mapping[str, str]) -> str | None:
    """The recipient to check, or None when this request is not about one."""
    if attrs.get("request") != "smtpd_access_policy":
        return None
    if attrs.get("protocol_state", "").upper() != "RCPT":
        return None
    recipient = attrs.get("recipient", "").strip()
    return recipient or None


def refusal(configured: str, check: Check) -> str:
    """The action for a recipient that may not be mailed: `configured` (REJECT, DEFER,
    HOLD, WARN) with bounced's text, or a custom action used as written."""
    word = configured.strip()
    why = check.reason or check.state
    head = _WITH_TEXT.get(word.upper())
    if head is None:
        return word
    return f"{head} <{check.address}>: recipient is on the suppression list ({why})"


def unavailable(fail_open: bool) -> str:
    """The action when the store cannot be reached: no opinion, or try again later."""
    if fail_open:
        return DUNNO
    return "DEFER_IF_PERMIT 4.3.5 suppression list unavailable, try again later"


def answer(action: str) -> bytes:
    """One response on the wire (no line break may hide in the action)."""
    text = action.replace("\r", " ").replace("\n", " ")
    return f"action={text}\n\n".encode("utf-8", "surrogateescape")
