"""Sending providers in: their event webhooks (`POST /v1/webhooks/{provider}`) and their
suppression lists (`POST /v1/imports/{provider}`, scope `admin`).

A webhook is authenticated by the provider's own signature or credentials
(`[webhooks.<provider>]`, bounced.providers), never by bounced's bearer tokens; a
provider that is not enabled is a 404. A request that fails verification is answered
401, 403 (or 406 for Mailgun: a payload it must not resend), logged with the
provider and the reason, counted in `bounced_webhook_requests{outcome="refused"}`,
and nothing is recorded. A verified payload is recorded through
`Suppressions.ingest_bounces` (the provider's event id is the notice, so a retry is
recorded once); a verified event that cannot be understood is kept in the inbox
(`bounced inbox list`) and answered 2xx, so the provider does not retry it forever.

The verifiers live on the app (`install`), so a signing certificate is fetched once
and a Mailgun token is remembered across requests; tests install one with their
own certificate fetcher.
"""

from __future__ import annotations

import codecs
import logging
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bounced.errors import UnreadableImport, WebhookRefused
from bounced.http.auth import Scope, acting
from bounced.http.errors import ApiError
from bounced.listener.inbox import Inbox
from bounced.listener.spool import Envelope
from bounced.metrics import WEBHOOKS, count_ingested
from bounced.providers import ses
from bounced.providers.auth import Request as ProviderRequest
from bounced.providers.facts import Events
from bounced.providers.imports import IMPORT_FORMATS, Imported, entries, parse_columns, record
from bounced.providers.registry import READERS, WEBHOOK_PROVIDERS, Verifier, verifier
from bounced.suppressions import Suppressions

__all__ = [
    "ImportAnswer",
    "ImportSkip",
    "WebhookAnswer",
    "Webhooks",
    "import_list",
    "install",
    "log",
    "router",
    "webhook",
]

router = APIRouter(tags=["providers"])
log = logging.getLogger("bounced.http.webhooks")

#: Upload bytes kept in memory before the spooled copy goes to a temporary file.
_IN_MEMORY = 1 << 20


class Webhooks:
    """The enabled providers' verifiers of one app."""

    def __init__(self, app: FastAPI, fetch: ses.Fetcher = ses.fetch_https) -> None:
        settings = app.state.settings.webhooks
        self.verifiers: dict[str, Verifier] = {}
        for name in WEBHOOK_PROVIDERS:
            check = verifier(name, settings, fetch=fetch)
            if check is not None:
                self.verifiers[name] = check
        self.confirm = settings.ses.confirm


def install(app: FastAPI, *, fetch: ses.Fetcher = ses.fetch_https) -> Webhooks:
    """Give `app` its verifiers (done at the first webhook request when not before)."""
    webhooks = Webhooks(app, fetch)
    app.state.webhooks = webhooks
    return webhooks


def _webhooks(request: Request) -> Webhooks:
    hooks = getattr(request.app.state, "webhooks", None)
    return hooks if hooks is not None else install(request.app)


class WebhookAnswer(BaseModel):
    """What the payload amounted to: rows recorded (new), rows seen before, events
    ignored (opens, clicks), events kept in the inbox."""

    recorded: int
    duplicates: int
    ignored: int
    kept: int


def _record(sup: Suppressions, provider: str, events: Events, client: str) -> dict[str, int]:
    """Record the notices and keep the unreadable events (in a worker thread: the store)."""
    source = f"webhook:{provider}"
    results = list(sup.ingest_bounces((source, n.notice, n.bounces) for n in events.notices))
    count_ingested(results)
    rows = [row for result in results for row in result.rows]
    inbox = Inbox(sup)
    envelope = Envelope(mail_from=source, rcpt_tos=(), client=client)
    for event in events.unreadable:
        subject = f"{provider} webhook event bounced cannot read"
        inbox.add(event.notice, envelope, event.raw, subject=subject, reason=event.reason)
        log.warning("%s webhook event kept in the inbox: %s", provider, event.reason)
    return {
        "recorded": sum(1 for r in rows if r.address and not r.duplicate),
        "duplicates": sum(1 for r in rows if r.duplicate),
        "ignored": events.ignored,
        "kept": len(events.unreadable),
    }


def _subscription(hooks: Webhooks, check: Verifier, url: str) -> None:
    """An SNS (un)subscription confirmation: visited when `confirm`, else logged."""
    if hooks.confirm and isinstance(check, ses.SesVerifier):
        check.confirm(url)
        log.info("ses: subscription confirmed")
    else:
        log.warning("ses: subscription to confirm: visit %s", url)


@router.post(
    "/v1/webhooks/{provider}",
    response_model=WebhookAnswer,
    openapi_extra={"security": []},
    responses={406: {"description": "A payload the provider must not resend"}},
)
async def webhook(provider: str, request: Request) -> dict[str, int]:
    """One provider event post (SES through SNS, Mailgun, SendGrid, Postmark, SparkPost,
    Brevo), authenticated by the provider's own signature or credentials."""
    hooks = _webhooks(request)
    check = hooks.verifiers.get(provider)
    if check is None:
        raise ApiError(404, "not_found", f"no webhook is enabled for {provider!r}")
    client = request.client.host if request.client else ""
    headers = {k.lower(): v for k, v in request.headers.items()}
    arrived = ProviderRequest(await request.body(), headers, client)
    try:
        payload = await run_in_threadpool(check.verify, arrived)
    except WebhookRefused as exc:
        WEBHOOKS.labels(provider, "refused").inc()
        log.warning("%s webhook refused (%s) from %s: %s", provider, exc.status, client, exc.reason)
        code = {401: "unauthorized", 406: "not_acceptable"}.get(exc.status, "forbidden")
        raise ApiError(exc.status, code, exc.reason) from None
    events = READERS[provider](payload)
    state = request.app.state
    sup = Suppressions(state.store, state.settings, f"webhook:{provider}")
    answer = await run_in_threadpool(_record, sup, provider, events, client)
    if events.subscribe_url:
        await run_in_threadpool(_subscription, hooks, check, events.subscribe_url)
    check.recorded(payload)
    WEBHOOKS.labels(provider, "kept" if events.unreadable else "recorded").inc()
    return answer


class ImportSkip(BaseModel):
    where: str
    why: str


class ImportAnswer(BaseModel):
    """What an import did (`bounced import`): rows recorded, already known, skipped."""

    imported: int
    already_known: int
    skipped: list[ImportSkip]


def _lines(upload: IO[bytes]) -> Iterator[str]:
    """The spooled upload as text lines (UTF-8, a BOM dropped, bad bytes replaced)."""
    upload.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    while chunk := upload.read(1 << 16):
        pending += decoder.decode(chunk)
        *whole, pending = pending.split("\n")
        yield from (line + "\n" for line in whole)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _import(
    sup: Suppressions, fmt: str, upload: IO[bytes], columns: dict[str, str], dry: bool
) -> Imported:
    try:
        return record(sup, entries(fmt, _lines(upload), columns=columns), fmt, dry_run=dry)
    except UnreadableImport as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


@router.post("/v1/imports/{provider}", response_model=ImportAnswer)
async def import_list(
    provider: str,
    request: Request,
    sup: Annotated[Suppressions, Depends(acting(Scope.ADMIN))],
    dry_run: bool = False,
    column: Annotated[list[str], Query(description="csv: address=COLUMN ...")] = [],  # noqa: B006
) -> dict[str, Any]:
    """A provider's suppression list as the request body (the file `bounced import`
    reads), streamed to a temporary file and imported: idempotent, bad rows skipped
    with their line, the rest imported."""
    if provider not in IMPORT_FORMATS:
        raise ApiError(404, "not_found", f"no import format {provider!r}")
    try:
        columns = parse_columns(column)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"column {exc}") from None
    with tempfile.SpooledTemporaryFile(_IN_MEMORY) as upload:
        async for chunk in request.stream():
            upload.write(chunk)
        done = await run_in_threadpool(_import, sup, provider, upload, columns, dry_run)
    answer: dict[str, Any] = done.to_dict()
    return answer
