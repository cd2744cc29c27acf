"""The HTTP API: `create_app(settings)` builds the FastAPI application.

The app holds no state of its own: one `Store` (a connection pool) on
`app.state.store`, the settings on `app.state.settings`; every answer comes from the
database, so any number of worker processes and hosts can serve one PostgreSQL.

Routes live in one module per area, each exposing `router` (a FastAPI APIRouter).
`ROUTERS` names them; a new area (webhooks, list cleaning) is one more module with a
`router` and one more line in `ROUTERS`, or, without touching this file,
`create_app(settings, extra_routers=(module.router,))`. A route gets the Python API
acting for its caller through `bounced.http.auth.acting(scope)`, and answers errors by
raising `bounced.http.errors.ApiError` or letting a `BouncedError` through.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bounced.config import Settings, load_settings
from bounced.db.store import Store
from bounced.db.tokens import Tokens
from bounced.http import errors
from bounced.http.auth import TokenCache
from bounced.http.errors import ERROR_RESPONSES, error_response
from bounced.metrics import REQUEST_DURATION

__all__ = ["ROUTERS", "create_app", "factory"]

#: The route modules, each with a `router`, in the order the OpenAPI document lists them
#: (and routes are matched: the verdicts, the hot path, first).
ROUTERS: tuple[str, ...] = (
    "bounced.http.checks",
    "bounced.http.health",
    "bounced.http.suppressions",
    "bounced.http.admin",
    "bounced.http.ingest",
    "bounced.http.sending",
    "bounced.http.inbox",
    "bounced.http.clean",
    "bounced.http.webhooks",
)

_UNMATCHED = "<unmatched>"


class _Limits:
    """ASGI middleware: a body larger than `max_body_size` is answered 413 (by its
    Content-Length before a byte is read, else as soon as the count passes it), and
    every request's duration goes into the histogram under its route template
    (never the path itself, which may hold an address)."""

    def __init__(self, app: Any, max_body_size: int) -> None:
        self.app = app
        self.max = max_body_size

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            length = int(dict(scope["headers"]).get(b"content-length", b"0"))
        except ValueError:
            length = 0
        if length > self.max:
            await self._too_large(scope, receive, send)
        else:
            await self.app(scope, self._counting(receive), send)
        route = scope.get("route")
        template = getattr(route, "path", _UNMATCHED)
        REQUEST_DURATION.labels(template, scope["method"]).observe(time.perf_counter() - start)

    def _counting(self, receive: Any) -> Any:
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max:
                raise errors.ApiError(413, "too_large", self._message())
            return message

        return counted

    def _message(self) -> str:
        return f"the request body is over {self.max} bytes ([api] max_body_size)"

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = error_response(413, "too_large", self._message(), {"Connection": "close"})
        await response(scope, receive, send)


def _routers(names: Sequence[str]) -> list[APIRouter]:
    return [importlib.import_module(name).router for name in names]


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The application over `store` (default: opened from the settings, its schema
    created when the database is empty and refused when it is outdated)."""
    app = FastAPI(
        title="bounced",
        summary="Bounce processing and suppression lists: may I send to this address?",
        version=version("bounced-engine"),
        root_path=settings.api.root_path,
    )
    app.state.settings = settings
    app.state.store = store or Store.open(settings)
    ttl = settings.api.token_cache.total_seconds()
    app.state.tokens = TokenCache(Tokens(app.state.store), ttl)
    errors.install(app)
    for router in (*_routers(ROUTERS), *extra_routers):
        app.include_router(router, responses=ERROR_RESPONSES)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
        )
    app.add_middleware(_Limits, max_body_size=settings.api.max_body_size)
    return app


def factory() -> FastAPI:
    """The app from the configuration (config file, BOUNCED_* environment), for uvicorn's
    worker processes (`bounced api` passes its options through the environment)."""
    return create_app(load_settings())
