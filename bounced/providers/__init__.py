"""Sending providers: their webhook events in as bounce rows, their suppression lists in
and out.

One module per provider (`ses`, `mailgun`, `sendgrid`, `postmark`, `sparkpost`,
`brevo`), each with a verifier (is this request really from the provider?) and a
pure `read` (a verified payload's facts, `bounced.providers.facts.Events`); what
each provider's event types mean is data (rules/esp.toml, `bounced.providers.esp`).
`imports` and `exports` read and write the providers' suppression-list files.
The HTTP layer (bounced.http.webhooks) and the CLI are the edges; recording goes
through `Suppressions.ingest_bounces`, the same path as a parsed DSN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bounced.config import WebhooksSettings
from bounced.providers import brevo, mailgun, postmark, sendgrid, ses, sparkpost
from bounced.providers.auth import Request
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
    return {postmark.NAME: postmark, sparkpost.NAME: sparkpost, brevo.NAME: brevo}[name].verifier(
        config
    )
