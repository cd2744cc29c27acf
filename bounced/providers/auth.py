"""Checks shared by the providers' webhook verifiers: what arrived (`Request`), HTTP basic
credentials compared in constant time, a source-network allow-list, fresh timestamps,
and tokens seen before.

Nothing here knows a framework: the HTTP layer builds a `Request` from what it got.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bounced.config import BasicAuthWebhook
from bounced.errors import WebhookRefused

__all__ = [
    "BasicAuthVerifier",
    "ReplayGuard",
    "Request",
    "check_basic",
    "check_bearer",
    "check_fresh",
    "check_network",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One webhook request: the raw body (signatures cover these exact bytes), headers
    by lower-case name, and the peer's address."""

    body: bytes
    headers: Mapping[str, str]
    client: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def _same(given: str, wanted: str) -> bool:
    return hmac.compare_digest(given.encode(), wanted.encode())


def check_basic(provider: str, request: Request, username: str, password: str) -> None:
    """HTTP basic credentials, both parts compared in constant time."""
    if not (username and password):
        raise WebhookRefused(provider, "no credentials configured")
    scheme, _, encoded = request.header("authorization").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookRefused(provider, "no basic credentials", status=401)
    try:
        user, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise WebhookRefused(provider, "unreadable basic credentials", status=401) from None
    # Both compared whatever the first gives: the time says nothing of which was wrong.
    if not (sep and _same(user, username) & _same(secret, password)):
        raise WebhookRefused(provider, "wrong credentials", status=401)


def check_bearer(request: Request, token: str) -> bool:
    """True when the request carries `token` as its bearer token."""
    scheme, _, given = request.header("authorization").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and _same(given.strip(), token)


def check_network(provider: str, request: Request, networks: tuple[str, ...]) -> None:
    """The peer is in one of `networks` (CIDR); an empty list allows any source."""
    if not networks:
        return
    try:
        peer = ipaddress.ip_address(request.client)
    except ValueError:
        raise WebhookRefused(provider, f"source {request.client!r} is no address") from None
    if not any(peer in ipaddress.ip_network(n, strict=False) for n in networks):
        raise WebhookRefused(provider, f"source {peer} is not in the allowed networks")


def check_fresh(provider: str, stamp: str, max_age: timedelta, now: float) -> None:
    """A signed timestamp (Unix seconds) within `max_age` of now, either way."""
    try:
        when = float(stamp)
    except ValueError:
        raise WebhookRefused(provider, f"timestamp {stamp!r} is no number", status=406) from None
    if abs(now - when) > max_age.total_seconds():
        raise WebhookRefused(provider, f"stale timestamp {stamp}", status=406)


class ReplayGuard:
    """Tokens seen within `window` (in this process). A token is remembered only once
    its request was recorded (`remember`), so a provider's retry of a request that failed
    on our side is not refused as a replay. The store's notice identity makes a replay
    that gets past another process harmless: the same event is recorded once."""

    def __init__(
        self, window: timedelta, *, limit: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.window = window.total_seconds()
        self.limit = limit
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _expire(self) -> None:
        oldest = self.clock() - self.window
        while self._seen and (
            len(self._seen) > self.limit or next(iter(self._seen.values())) < oldest
        ):
            self._seen.popitem(last=False)

    def check(self, provider: str, token: str) -> None:
        self._expire()
        if token in self._seen:
            raise WebhookRefused(provider, "replayed token", status=406)

    def remember(self, token: str) -> None:
        self._seen[token] = self.clock()
        self._seen.move_to_end(token)
        self._expire()


class BasicAuthVerifier:
    """The providers that sign nothing (Postmark, SparkPost, Brevo): the source network
    when one is configured, then the basic credentials (or Brevo's bearer token)
    configured for the webhook URL. The verified payload is the body itself."""

    def __init__(self, name: str, settings: BasicAuthWebhook) -> None:
        self.name = name
        self.settings = settings

    def verify(self, request: Request) -> Any:
        s = self.settings
        check_network(self.name, request, s.allowed_networks)
        token = getattr(s, "token", "")
        if token and not check_bearer(request, token) and not (s.username and s.password):
            raise WebhookRefused(self.name, "wrong or missing token", status=401)
        if not (token and check_bearer(request, token)):
            check_basic(self.name, request, s.username, s.password)
        return request.body

    def recorded(self, payload: Any) -> None:
        """Nothing to remember: a retried event is recorded once by its identity."""
