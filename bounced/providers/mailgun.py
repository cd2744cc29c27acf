"""Mailgun webhooks (JSON, `signature` and `event-data`).

Verification: `signature.signature` is the hex HMAC-SHA256 of `timestamp + token`
under the webhook signing key; a timestamp further than `max_age` from now, or
a token already seen, is refused with 406 (Mailgun does not retry those), as is
a body that is no signed Mailgun payload at all.

Reading: type keys "failed:<severity>/<reason>", then "failed:<severity>/*";
otherwise the event's name. `delivery-status` gives the server's words (its
message, else description), code and enhanced code; the event's `id` is its identity.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from bounced.config import MailgunWebhook
from bounced.errors import WebhookRefused
from bounced.providers.auth import ReplayGuard, Request, check_fresh
from bounced.providers.facts import Events, NotUnderstood, Said, gather, obj

__all__ = ["NAME", "MailgunVerifier", "read", "signature_of"]

NAME = "mailgun"


def signature_of(key: str, timestamp: str, token: str) -> str:
    """The signature Mailgun sends for `timestamp` and `token`."""
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


class MailgunVerifier:
    """Checks Mailgun payloads for one signing key; remembers tokens for `max_age`."""

    name = NAME

    def __init__(self, settings: MailgunWebhook, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.replays = ReplayGuard(settings.max_age, clock=clock)

    def verify(self, request: Request) -> dict[str, Any]:
        if not self.settings.signing_key:
            raise WebhookRefused(NAME, "no signing key configured")
        try:
            payload: dict[str, Any] = json.loads(request.body)
        except ValueError:
            raise WebhookRefused(NAME, "body is not JSON", status=406) from None
        signed = obj(obj(payload).get("signature"))
        timestamp, token = str(signed.get("timestamp", "")), str(signed.get("token", ""))
        given = str(signed.get("signature", ""))
        if not (timestamp and token and given):
            raise WebhookRefused(NAME, "no signature", status=406)
        wanted = signature_of(self.settings.signing_key, timestamp, token)
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            raise WebhookRefused(NAME, "bad signature")
        check_fresh(NAME, timestamp, self.settings.max_age, self.clock())
        self.replays.check(NAME, token)
        return payload

    def recorded(self, payload: dict[str, Any]) -> None:
        """The payload was recorded: its token may not be used again."""
        self.replays.remember(str(payload["signature"]["token"]))


def _read_event(event: dict[str, Any]) -> tuple[str, list[Said]]:
    name = str(event.get("event", ""))
    if not name:
        raise NotUnderstood("no event name")
    status = obj(event.get("delivery-status"))
    headers = obj(obj(event.get("message")).get("headers"))
    keys: tuple[str, ...] = (name,)
    if name == "failed":
        severity = event.get("severity", "")
        keys = (f"failed:{severity}/{event.get('reason', '')}", f"failed:{severity}/*")
    code = str(status.get("code", "") or "")
    words = str(status.get("message") or status.get("description") or "")
    diagnostic = f"{code} {words}".strip() if code and not words.startswith(code) else words
    said = Said(
        str(event.get("recipient", "")),
        keys,
        diagnostic=diagnostic,
        status=str(status.get("enhanced-code", "") or ""),
        remote_mta=str(status.get("mx-host", "") or ""),
        original_message_id=str(headers.get("message-id", "")),
        arrival_date=str(event.get("timestamp", "")),
    )
    return str(event.get("id", "")), [said]


def read(payload: dict[str, Any]) -> Events:
    """The facts of one verified Mailgun payload."""
    return gather(NAME, [obj(payload.get("event-data"))], _read_event)
