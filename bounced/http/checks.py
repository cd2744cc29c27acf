"""Verdicts: one address (`GET /v1/suppressions/{address}`) or up to `[api] max_batch`
at once (`POST /v1/check`), streamed back in input order."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from bounced.http.auth import Scope, acting
from bounced.http.errors import ApiError
from bounced.http.models import AddressPath, VerdictOut, verdict_json
from bounced.metrics import CHECKS
from bounced.suppressions import Suppressions

__all__ = ["router"]

router = APIRouter(tags=["checks"])
Checking = Annotated[Suppressions, Depends(acting(Scope.CHECK))]

NDJSON = "application/x-ndjson"
#: Answers per chunk written to the socket.
_CHUNK = 1000


@router.get("/v1/suppressions/{address}", response_model=VerdictOut)
async def verdict(address: AddressPath, sup: Checking) -> JSONResponse:
    """May `address` be mailed? Never 404: an address the store never saw is sendable,
    an invalid one is not (its `reason` says why)."""
    (one,) = await run_in_threadpool(list, sup.verdicts([address]))
    CHECKS.labels(one.check.verdict).inc()
    return JSONResponse(verdict_json(one))  # built as VerdictOut: no second validation


_BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "string", "format": "email"}}
            },
            "text/plain": {"schema": {"type": "string"}},
        },
    },
}
_BULK_ANSWERS = {
    200: {
        "description": "One answer per address, in input order: NDJSON unless the request "
        "accepts application/json (then one JSON array).",
        "content": {
            NDJSON: {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/VerdictOut"}}
            },
        },
    }
}


async def _addresses(request: Request) -> list[str]:
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/plain":
        text = body.decode("utf-8", "replace")
        addresses = [line.strip() for line in text.splitlines() if line.strip()]
    elif kind in ("application/json", ""):
        try:
            addresses = json.loads(body)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"body is not JSON: {exc}") from None
        if not isinstance(addresses, list) or not all(type(a) is str for a in addresses):
            raise ApiError(422, "invalid_request", "body must be a JSON array of strings")
    else:
        raise ApiError(415, "unsupported_media_type", "send application/json or text/plain")
    limit = request.app.state.settings.api.max_batch
    if len(addresses) > limit:
        raise ApiError(413, "too_many", f"{len(addresses)} addresses; at most {limit} a request")
    return addresses


def _answers(sup: Suppressions, addresses: list[str], as_array: bool) -> Iterator[bytes]:
    """The answers as bytes, a chunk at a time; the verdict counts once at the end."""
    seen: Counter[str] = Counter()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []
    first = True
    if as_array:
        yield b"["
    for one in sup.verdicts(addresses):
        seen[one.check.verdict] += 1
        lines.append(dumps(verdict_json(one)))
        if len(lines) == _CHUNK:
            yield _joined(lines, as_array, first)
            lines, first = [], False
    if lines:
        yield _joined(lines, as_array, first)
    if as_array:
        yield b"]"
    for name, n in seen.items():
        CHECKS.labels(name).inc(n)


def _joined(lines: list[str], as_array: bool, first: bool) -> bytes:
    if as_array:
        return (("" if first else ",") + ",".join(lines)).encode()
    return ("\n".join(lines) + "\n").encode()


@router.post(
    "/v1/check",
    openapi_extra=_BULK_BODY,
    responses=_BULK_ANSWERS,
    response_class=StreamingResponse,
)
async def check(
    sup: Checking, addresses: Annotated[list[str], Depends(_addresses)], request: Request
) -> StreamingResponse:
    """Verdicts for many addresses (a JSON array, or text/plain with one per line), in
    input order; invalid addresses are answered with their reason."""
    accept = request.headers.get("accept", "")
    as_array = "application/json" in accept and NDJSON not in accept
    media = "application/json" if as_array else NDJSON
    return StreamingResponse(_answers(sup, addresses, as_array), media_type=media)
