"""Bearer tokens and scopes, as FastAPI dependencies.

A route says what it needs and gets the Python API acting for the caller:

    @router.post("/v1/suppressions")
    def block(body: Block, sup: Annotated[Suppressions, Depends(acting(Scope.ADMIN))]):
        sup.block(body.addresses)  # audited with the token's name as actor

`acting(scope)` authorises (401 without a valid token, 403 without the scope; `admin`
implies every scope) and hands over a `Suppressions` on the app's one store whose
actor is the token's name. `authorized(scope)` gives the `Principal` alone.

The dependencies are coroutines: no thread hop per request for them. Tokens are
verified by `app.state.tokens` (a `TokenCache`): the database is asked once per
token per `[api] token_cache`, so a revoked token is refused within that time.
"""

import functools
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bounced.http.errors import ApiError
from bounced.http.tokens import Principal, Scope, Tokens
from bounced.suppressions import Suppressions

__all__ = ["ANONYMOUS", "Principal", "Scope", "TokenCache", "acting", "authorized"]

#: Who calls /v1/check and friends without a token when `allow_anonymous_check` is on.
ANONYMOUS = Principal("anonymous", frozenset({Scope.CHECK}))
_BEARER = HTTPBearer(auto_error=False, description="`bounced token create NAME --scope ...`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_CACHED = 10_000


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal | None:
    if credentials is None:
        return None
    state = request.app.state
    return await state.tokens.verify(credentials.credentials)


class TokenCache:
    """Verified tokens for `ttl` seconds (0: ask the database every time); the lookup
    itself runs on a worker thread, off the event loop."""

    def __init__(
        self, tokens: Tokens, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.tokens = tokens
        self.ttl = ttl
        self.clock = clock
        self._seen: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, token: str) -> Principal | None:
        now = self.clock()
        hit = self._seen.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await run_in_threadpool(self.tokens.verify, token)
        if self.ttl:
            if len(self._seen) > _CACHED:
                self._seen.clear()  # a flood of made-up tokens cannot grow it without end
            self._seen[token] = (now + self.ttl, principal)
        return principal


@functools.cache
def authorized(scope: Scope) -> Callable[..., Principal]:
    """A dependency: the caller, when its token has `scope`."""

    async def dependency(
        request: Request, principal: Annotated[Principal | None, Depends(_principal)]
    ) -> Principal:
        if principal is None:
            if scope is Scope.CHECK and request.app.state.settings.api.allow_anonymous_check:
                return ANONYMOUS
            raise ApiError(401, "unauthorized", "a valid bearer token is needed", _CHALLENGE)
        if not principal.may(scope):
            raise ApiError(403, "forbidden", f"the token {principal.name!r} lacks scope {scope}")
        return principal

    dependency.__name__ = f"authorized_{scope}"
    return dependency


@functools.cache
def acting(scope: Scope) -> Callable[..., Suppressions]:
    """A dependency: the Python API acting for the caller, when its token has `scope`."""

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(authorized(scope))]
    ) -> Suppressions:
        state = request.app.state
        return Suppressions(state.store, state.settings, principal.name)

    dependency.__name__ = f"acting_{scope}"
    return dependency
