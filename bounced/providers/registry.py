"""Every webhook provider by name: its reader, and its verifier under the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bounced.config import WebhooksSettings
from bounced.providers import brevo, mailgun, postmark, sendgrid, ses, sparkpost
from bounced.providers.auth import BasicAuthVerifier, Request
from bounced.providers.facts import Events

__all__ = ["READERS", "WEBHOOK_PROVIDERS", "Request", "Verifier", "verifier"]

#: Each provider's reader of a verified payload.
READERS: dict[str, Callable[[Any], Events]] = {
    ses.NAME: ses.read,
    mailgun.NAME: mailgun.read,
    sendgrid.NAME: sendgrid.read,
    postmark.NAME: postmark.read,
    sparkpost.NAME: sparkpost.read,
    brevo.NAME: brevo.read,
}
WEBHOOK_PROVIDERS = tuple(READERS)


class Verifier(Protocol):
    """Checks that a request comes from its provider; `verify` gives the payload or
    raises WebhookRefused, `recorded` is told once the payload was recorded."""

    name: str

    def verify(self, request: Request) -> Any: ...

    def recorded(self, payload: Any) -> None: ...


def verifier(
    name: str, settings: WebhooksSettings, *, fetch: ses.Fetcher = ses.fetch_https
) -> Verifier | None:
    """The verifier of provider `name` under `settings`; None when it is not enabled.
    `fetch` gets SNS signing certificates (and visits SubscribeURLs)."""
    config = getattr(settings, name, None)
    if config is None or not config.enabled:
        return None
    if name == ses.NAME:
        return ses.SesVerifier(config, fetch)
    if name == mailgun.NAME:
        return mailgun.MailgunVerifier(config)
    if name == sendgrid.NAME:
        return sendgrid.SendgridVerifier(config)
    return BasicAuthVerifier(name, config)  # Postmark, SparkPost, Brevo: they sign nothing
