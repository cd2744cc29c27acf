"""Signed VERP return paths: `<prefix>+<token>@<bounce domain>`.

A sender puts one return path per recipient and message on the envelope; the
bounce comes back to that address, and the token alone says who bounced and for
which message, even when the bounce itself is unreadable. The token is signed
(HMAC-SHA256, a 10-byte tag) so that nobody can forge bounces to get an address
suppressed, and written in lower-case base32 without padding because some MTAs
fold the case of local parts: any case decodes.

Token bytes: a version byte, the recipient's UTF-8 length (2 bytes), the
recipient, the message key, then the tag over everything before it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from bounced.errors import ConfigError

__all__ = ["TAG_BYTES", "Token", "decode", "encode"]

TAG_BYTES = 10
_VERSION = 1
_CONTEXT = b"bounced-verp\0"
_MAX_RECIPIENT = 0xFFFF


@dataclass(frozen=True, slots=True)
class Token:
    """What a VERP address says. Only `valid` tokens may be trusted; an invalid one
    keeps whatever could be read (for the log) and `reason` says what was wrong."""

    recipient: str
    message_key: str
    valid: bool
    reason: str = ""


def _tag(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT + payload, hashlib.sha256).digest()[:TAG_BYTES]


def encode(recipient: str, message_key: str, *, secret: str, prefix: str, domain: str) -> str:
    """The signed return path for one recipient of one message."""
    if not secret:
        raise ConfigError("no VERP secret: set [verp] secret or BOUNCED_VERP_SECRET")
    if not domain:
        raise ConfigError("no VERP domain: set [verp] domain")
    rcpt = recipient.encode("utf-8", "surrogateescape")
    if len(rcpt) > _MAX_RECIPIENT:
        raise ValueError("recipient too long for a VERP token")
    payload = bytes([_VERSION]) + len(rcpt).to_bytes(2, "big") + rcpt
    payload += message_key.encode("utf-8", "surrogateescape")
    token = base64.b32encode(payload + _tag(secret, payload)).decode().rstrip("=").lower()
    return f"{prefix}+{token}@{domain}"


def decode(address: str, *, secret: str, prefix: str | None = None) -> Token | None:
    """Read a VERP address. None when it is not one (no `+token` local part, or a
    different prefix when one is given); otherwise a Token, valid or not."""
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    head, plus, token = (local if at else address).partition("+")
    if not plus or not token or (prefix is not None and head.lower() != prefix.lower()):
        return None
    return _read_token(token, secret)


def _read_token(token: str, secret: str) -> Token:
    text = token.lower()
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return Token("", "", False, "malformed token")
    # base32's last character can carry unused bits: only the canonical spelling counts,
    # so that no two tokens (one of them altered) decode to the same bytes.
    if base64.b32encode(data).decode().rstrip("=").lower() != text:
        return Token("", "", False, "malformed token")
    payload, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if len(payload) < 3 or payload[0] != _VERSION:
        return Token("", "", False, "unknown token version")
    size = int.from_bytes(payload[1:3], "big")
    if 3 + size > len(payload):
        return Token("", "", False, "malformed token")
    recipient = payload[3 : 3 + size].decode("utf-8", "surrogateescape")
    key = payload[3 + size :].decode("utf-8", "surrogateescape")
    if not secret:
        return Token(recipient, key, False, "no VERP secret configured")
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return Token(recipient, key, False, "bad signature")
    return Token(recipient, key, True)
