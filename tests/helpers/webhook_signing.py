"""Providers' signatures made in the test: an SNS signing certificate and key, a Mailgun
signing key, a SendGrid key pair, basic credentials. Nothing is fetched: the SNS
certificate is served by `Certificates`, the fetcher handed to the verifier."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bounced.config import (
    BasicAuthWebhook,
    BrevoWebhook,
    MailgunWebhook,
    SendgridWebhook,
    SesWebhook,
    WebhooksSettings,
)
from bounced.providers.auth import Request
from bounced.providers.mailgun import signature_of
from bounced.providers.sendgrid import SIGNATURE, TIMESTAMP
from bounced.providers.ses import signing_text
from helpers.certs import self_signed

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-notifications"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
MAILGUN_KEY = "key-" + "7" * 32
USER, PASSWORD = "hook", "s3cret-hook-password"
BREVO_TOKEN = "brevo-token-0123456789"


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    cert = self_signed(key, "sns.amazonaws.com", days=30)
    return cert.public_bytes(serialization.Encoding.PEM)


class Certificates:
    """The fetcher of SNS certificates (and SubscribeURLs): serves what it was given,
    and records every URL asked for."""

    def __init__(self) -> None:
        self.served: dict[str, bytes] = {}
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if url not in self.served:
            raise OSError(f"not served in the test: {url}")
        return self.served[url]


class Signer:
    """Keys for every provider, and requests signed with them."""

    def __init__(self) -> None:
        self.sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetch = Certificates()
        self.fetch.served[CERT_URL] = _certificate(self.sns_key)
        self.sendgrid_key = ec.generate_private_key(ec.SECP256R1())

    def settings(self) -> WebhooksSettings:
        public = self.sendgrid_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        basic = BasicAuthWebhook(enabled=True, username=USER, password=PASSWORD)
        return WebhooksSettings(
            ses=SesWebhook(enabled=True, topics=(TOPIC,)),
            mailgun=MailgunWebhook(enabled=True, signing_key=MAILGUN_KEY),
            sendgrid=SendgridWebhook(enabled=True, public_key=base64.b64encode(public).decode()),
            postmark=basic,
            sparkpost=basic,
            brevo=BrevoWebhook(enabled=True, token=BREVO_TOKEN),
        )

    def ses(self, message: dict[str, Any], *, version: str = "1", url: str = CERT_URL) -> bytes:
        message = dict(message, SignatureVersion=version, SigningCertURL=url, TopicArn=TOPIC)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.sns_key.sign(signing_text(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(message).encode()

    def mailgun(
        self, payload: dict[str, Any], *, key: str = MAILGUN_KEY, at: float | None = None
    ) -> bytes:
        stamp, token = str(int(time.time() if at is None else at)), secrets.token_hex(25)
        signed = {"timestamp": stamp, "token": token, "signature": signature_of(key, stamp, token)}
        return json.dumps(dict(payload, signature=signed)).encode()

    def sendgrid_headers(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        stamp = str(int(time.time() if at is None else at))
        signature = self.sendgrid_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: stamp}


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def signed_request(signer: Signer, provider: str, payload: Any) -> Request:
    """`payload` as the provider would send it, signed or with its credentials."""
    if provider == "ses":
        return Request(signer.ses(payload), {})
    if provider == "mailgun":
        return Request(signer.mailgun(payload), {})
    body = json.dumps(payload).encode()
    if provider == "sendgrid":
        return Request(body, signer.sendgrid_headers(body))
    if provider == "brevo":
        return Request(body, {"authorization": f"Bearer {BREVO_TOKEN}"})
    return Request(body, basic())
