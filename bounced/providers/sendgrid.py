"""SendGrid's Event Webhook (a JSON array of events), signed.

Verification: `X-Twilio-Email-Event-Webhook-Signature` is an ECDSA (P-256, SHA-256)
signature, base64 DER, over the `X-Twilio-Email-Event-Webhook-Timestamp` header
followed by the raw body bytes (never re-serialised JSON: any change of a byte
fails), checked with the public key SendGrid shows for the webhook.

Reading: type keys "bounce:<type>:<bounce_classification>", then "bounce:<type>";
"dropped:<reason>", then "dropped"; otherwise the event's name. `sg_event_id` is
the event's identity.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bounced.config import SendgridWebhook
from bounced.errors import ConfigError, WebhookRefused
from bounced.providers.auth import Request, check_fresh
from bounced.providers.facts import Events, NotUnderstood, Said, from_body, gather, objects

__all__ = ["NAME", "SIGNATURE", "TIMESTAMP", "SendgridVerifier", "load_public_key", "read"]

NAME = "sendgrid"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or as PEM."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip()))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"webhooks.sendgrid.public_key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("webhooks.sendgrid.public_key: not an elliptic-curve key")
    return key


class SendgridVerifier:
    name = NAME

    def __init__(self, settings: SendgridWebhook, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.key = load_public_key(settings.public_key) if settings.public_key else None

    def verify(self, request: Request) -> bytes:
        if self.key is None:
            raise WebhookRefused(NAME, "no public key configured")
        given, stamp = request.header(SIGNATURE), request.header(TIMESTAMP)
        if not (given and stamp):
            raise WebhookRefused(NAME, "no signature headers", status=401)
        try:
            signature = base64.b64decode(given, validate=True)
            self.key.verify(signature, stamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, InvalidSignature):
            raise WebhookRefused(NAME, "bad signature") from None
        check_fresh(NAME, stamp, self.settings.max_age, self.clock())
        return request.body

    def recorded(self, payload: Any) -> None:
        """Nothing to remember: a retried event is recorded once by its identity."""


def _read_event(event: dict[str, Any]) -> tuple[str, list[Said]]:
    name = str(event.get("event", ""))
    if not name:
        raise NotUnderstood("no event name")
    keys: tuple[str, ...] = (name,)
    if name == "bounce":
        kind = f"bounce:{event.get('type', 'bounce')}"
        keys = (f"{kind}:{event.get('bounce_classification', '')}", kind)
    elif name == "dropped":
        keys = (f"dropped:{event.get('reason', '')}", "dropped")
    said = Said(
        str(event.get("email", "")),
        keys,
        diagnostic=str(event.get("reason") or event.get("response") or ""),
        status=str(event.get("status", "") or ""),
        original_message_id=str(event.get("smtp-id", "")),
        arrival_date=str(event.get("timestamp", "")),
    )
    return str(event.get("sg_event_id", "")), [said]


def read(body: bytes) -> Events:
    """The facts of one verified Event Webhook post (a JSON array of events)."""
    return from_body(NAME, body, lambda events: gather(NAME, objects(events), _read_event))
