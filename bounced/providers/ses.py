"""Amazon SES events through an SNS HTTPS subscription.

Verification (the SNS documentation's procedure): the message's `Type` is one SNS
sends, its `TopicArn` is one configured, its `SigningCertURL` is an https URL on
`sns.<region>.amazonaws.com` ending `.pem` (fetched once per URL through an
injected fetcher, so tests serve their own certificate and nothing else is ever
fetched), and its `Signature` verifies over the documented name/value lines
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).

Reading: the Message is the SES notification (`notificationType`) or event
(`eventType`): Bounce, Complaint, Delivery, DeliveryDelay, Reject; one row per
recipient. Type keys in rules/esp.toml: "Bounce:<bounceType>/<bounceSubType>",
then "Bounce:<bounceType>/*"; "DeliveryDelay:<delayType>", then "DeliveryDelay:*";
otherwise the event's name. The SNS MessageId is the event's identity.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bounced.config import SesWebhook
from bounced.errors import WebhookRefused
from bounced.providers.auth import Request
from bounced.providers.facts import Events, NotUnderstood, Said, gather, obj, objects, texts

__all__ = [
    "NAME",
    "Fetcher",
    "SesVerifier",
    "fetch_https",
    "read",
    "signing_text",
]

NAME = "ses"

#: The name/value lines each message type is signed over, in this (byte) order.
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]{1,30}\.amazonaws\.com(?:\.cn)?")

Fetcher = Callable[[str], bytes]


def fetch_https(url: str) -> bytes:
    """GET `url` with certificate verification (urllib's default context)."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read(1 << 16)
        return body


def signing_text(message: dict[str, Any]) -> bytes:
    """The string SNS signs: "Name\\nvalue\\n" for each signed field present."""
    names = _SIGNED[message["Type"]]
    return "".join(
        f"{n}\n{message[n]}\n" for n in names if isinstance(message.get(n), str)
    ).encode()


def _sns_url(url: Any, *, pem: bool) -> str:
    """`url` when it is an https URL on an SNS host (ending .pem for a certificate)."""
    parts = urlsplit(url if isinstance(url, str) else "")
    if (
        parts.scheme != "https"
        or not _SNS_HOST.fullmatch(parts.hostname or "")
        or parts.port is not None
        or parts.username is not None
        or (pem and (not parts.path.endswith(".pem") or parts.query))
    ):
        what = "certificate" if pem else "subscribe"
        raise WebhookRefused(NAME, f"{what} URL not on an SNS host: {url!r}")
    return str(url)


class SesVerifier:
    """Checks SNS messages for one configuration; caches signing keys by URL."""

    name = NAME

    def __init__(self, settings: SesWebhook, fetch: Fetcher = fetch_https) -> None:
        self.settings = settings
        self.fetch = fetch
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def _key(self, url: str) -> rsa.RSAPublicKey:
        if url not in self._keys:
            try:
                key = x509.load_pem_x509_certificate(self.fetch(url)).public_key()
            except (OSError, ValueError) as exc:
                raise WebhookRefused(NAME, f"signing certificate unusable: {exc}") from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise WebhookRefused(NAME, "signing certificate has no RSA key")
            if len(self._keys) >= 64:  # certificates rotate rarely: a small cache
                self._keys.clear()
            self._keys[url] = key
        return self._keys[url]

    def verify(self, request: Request) -> dict[str, Any]:
        """The SNS message, verified; WebhookRefused says why not."""
        try:
            message = json.loads(request.body)
        except ValueError:
            raise WebhookRefused(NAME, "body is not JSON") from None
        if not isinstance(message, dict) or message.get("Type") not in _SIGNED:
            raise WebhookRefused(NAME, "not an SNS message")
        if message.get("TopicArn") not in self.settings.topics:
            raise WebhookRefused(NAME, f"unexpected TopicArn {message.get('TopicArn')!r}")
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise WebhookRefused(NAME, f"SignatureVersion {message.get('SignatureVersion')!r}")
        key = self._key(_sns_url(message.get("SigningCertURL"), pem=True))
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
            key.verify(signature, signing_text(message), padding.PKCS1v15(), algorithm())
        except (binascii.Error, InvalidSignature):
            raise WebhookRefused(NAME, "bad signature") from None
        return message

    def recorded(self, payload: Any) -> None:
        """Nothing to remember: a retried event is recorded once by its identity."""

    def confirm(self, url: str) -> None:
        """Visit a SubscribeURL (only ever one on an SNS host)."""
        self.fetch(_sns_url(url, pem=False))


def _original_id(mail: dict[str, Any]) -> str:
    """The original message's Message-ID header when SES passed headers on, else SES's
    own id of the message (what the same message's other events carry too)."""
    common = obj(mail.get("commonHeaders"))
    if common.get("messageId"):
        return str(common["messageId"])
    for header in mail.get("headers") or ():
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value", ""))
    return str(mail.get("messageId", ""))


def _failures(
    part: dict[str, Any], listed: str, keys: tuple[str, ...], original: str
) -> list[Said]:
    """The recipients of a bounce or a delay, each with its status and the server's words."""
    return [
        Said(
            str(r.get("emailAddress", "")),
            keys,
            diagnostic=str(r.get("diagnosticCode", "")),
            status=str(r.get("status", "")),
            remote_mta=str(part.get("remoteMtaIp", "")),
            reporting_mta=str(part.get("reportingMTA", "")).removeprefix("dsn; "),
            original_message_id=original,
            arrival_date=str(part.get("timestamp", "")),
        )
        for r in objects(part.get(listed))
    ]


def _rows(document: dict[str, Any]) -> list[Said]:
    event = str(document.get("notificationType") or document.get("eventType") or "")
    if not event:
        raise NotUnderstood("no notificationType or eventType")
    mail = obj(document.get("mail"))
    original = _original_id(mail)
    if event == "Bounce":
        bounce = obj(document.get("bounce"))
        kind = f"Bounce:{bounce.get('bounceType', '')}"
        keys = (f"{kind}/{bounce.get('bounceSubType', '')}", f"{kind}/*")
        return _failures(bounce, "bouncedRecipients", keys, original)
    if event == "DeliveryDelay":
        delay = obj(document.get("deliveryDelay"))
        keys = (f"DeliveryDelay:{delay.get('delayType', '')}", "DeliveryDelay:*")
        return _failures(delay, "delayedRecipients", keys, original)
    if event == "Complaint":
        complaint = obj(document.get("complaint"))
        return [
            Said(
                str(r.get("emailAddress", "")),
                (event,),
                feedback_type=str(complaint.get("complaintFeedbackType", "")),
                original_message_id=original,
                arrival_date=str(complaint.get("timestamp", "")),
            )
            for r in objects(complaint.get("complainedRecipients"))
        ]
    if event == "Delivery":
        delivery = obj(document.get("delivery"))
        return [
            Said(
                str(r),
                (event,),
                diagnostic=str(delivery.get("smtpResponse", "")),
                status="2.0.0",
                remote_mta=str(delivery.get("remoteMtaIp", "")),
                reporting_mta=str(delivery.get("reportingMTA", "")),
                original_message_id=original,
                arrival_date=str(delivery.get("timestamp", "")),
            )
            for r in texts(delivery.get("recipients"))
        ]
    if event == "Reject":
        reason = str(obj(document.get("reject")).get("reason", ""))
        return [
            Said(str(r), (event,), diagnostic=reason, original_message_id=original)
            for r in texts(mail.get("destination"))
        ]
    return [Said("", (event,))]  # Send, Open, Click...: ignored, or unknown


def _read_message(message: dict[str, Any]) -> tuple[str, list[Said]]:
    try:
        document = json.loads(message.get("Message", ""))
    except (TypeError, ValueError):
        raise NotUnderstood("the SNS Message is not JSON") from None
    if not isinstance(document, dict):
        raise NotUnderstood("the SNS Message is not a JSON object")
    return str(message.get("MessageId", "")), _rows(document)


def read(message: dict[str, Any]) -> Events:
    """The facts of one verified SNS message; a subscription confirmation gives its
    SubscribeURL. An unsubscribe confirmation is ignored: its SubscribeURL would
    subscribe again, which is for a person to decide."""
    if message.get("Type") == "SubscriptionConfirmation":
        return Events(subscribe_url=str(message.get("SubscribeURL", "")))
    if message.get("Type") == "UnsubscribeConfirmation":
        return Events(ignored=1)
    return gather(NAME, [message], _read_message)
