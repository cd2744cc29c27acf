"""Scanning helpers shared by the layers: RFC 3464-style field groups, addresses,
status and reply codes in free text.

Patterns here are linear (no nested quantifiers), so no input can make them
backtrack badly.
"""

from __future__ import annotations

import re

__all__ = [
    "REPLY_CODE",
    "STATUS",
    "failure_reply_code",
    "failure_status",
    "field_groups",
    "first_reply_code",
    "first_status",
    "remote_host",
    "smtp_command",
    "typed_value",
    "unfold",
]

_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)")

STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)")
REPLY_CODE = re.compile(r"(?<![\w.-])([245][0-7]\d)(?=[ :,-]|$)", re.MULTILINE)


_COMMAND = re.compile(
    r"(?:after|in reply to|did not like our|>>>|response to|following|smtp command:?)\s+"
    r"(?:the\s+)?(mail from|rcpt to|rcpt|end of data|final data|data|helo|ehlo|starttls)\b",
)
_CONNECT = re.compile(r"(?:connect to|connection to|while connecting to|talking to)\s")


def smtp_command(lowered: str) -> str:
    """The SMTP command a server's text says the refusal answered (MAIL, RCPT,
    DATA, ...); CONN when it failed before any; "" when the text does not say."""
    match = _COMMAND.search(lowered)
    if match:
        word = match.group(1)
        return {
            "mail from": "MAIL",
            "rcpt to": "RCPT",
            "helo": "HELO",
            "ehlo": "EHLO",
            "starttls": "STARTTLS",
        }.get(word, "DATA")
    return "CONN" if _CONNECT.search(lowered) and "said:" not in lowered else ""


_REMOTE = re.compile(
    r"(?:\bhost|talking to|remote host|server|by)\s+\[?"
    r"((?:[a-z0-9-]{1,63}\.){1,10}[a-z]{2,24}|\d{1,3}(?:\.\d{1,3}){3})\]?",
)


def remote_host(lowered: str) -> str:
    """The remote host a server's text names ("host mx.example.org[192.0.2.1] said")."""
    match = _REMOTE.search(lowered)
    return match.group(1) if match else ""


def field_groups(text: str) -> list[dict[str, str]]:
    """Blank-line separated groups of `Name: value` fields, continuation lines
    unfolded, names lower-cased. The first value of a repeated name wins."""
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                groups.append(current)
                current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] = f"{current[last]} {line.strip()}".strip()
            continue
        match = _FIELD.match(line)
        if not match:
            if last == "diagnostic-code":
                # A multi-line SMTP reply whose lines were not folded.
                current[last] = f"{current[last]} {line.strip()}"
            else:
                last = ""
            continue
        name = match.group(1).lower()
        if name in _RECIPIENT_FIELDS and name in current:
            # Another recipient without the blank line that should part them.
            groups.append(current)
            current = {}
        elif name in current:
            last = ""
            continue
        current[name] = match.group(2).strip()
        last = name
    if current:
        groups.append(current)
    return groups


def typed_value(value: str) -> str:
    """`rfc822; user@example.org` → `user@example.org`; `smtp; 550 ...` → `550 ...`."""
    kind, sep, rest = value.partition(";")
    if sep and " " not in kind.strip() and kind.strip():
        return rest.strip()
    return value.strip()


def first_status(text: str) -> str:
    match = STATUS.search(text)
    return match.group(1) if match else ""


def failure_status(text: str) -> str:
    """The last 4.x.x or 5.x.x code in a server's text: the innermost quoted
    reply, from the server that refused, is the most specific."""
    codes = [c for c in STATUS.findall(text) if c[0] != "2"]
    return codes[-1] if codes else ""


def failure_reply_code(text: str) -> str:
    """The last 4xx or 5xx reply code in a server's text (see failure_status)."""
    codes = [c for c in REPLY_CODE.findall(text) if c[0] != "2"]
    return codes[-1] if codes else ""


def first_reply_code(text: str) -> str:
    match = REPLY_CODE.search(text)
    return match.group(1) if match else ""


def unfold(text: str) -> str:
    """One line of text with runs of white space collapsed."""
    return " ".join(text.split())
