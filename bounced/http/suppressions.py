"""Reading the list: `GET /v1/suppressions` (a page, or the whole export streamed as
CSV or NDJSON) and `GET /v1/suppressions/{address}/history` (scope `read`)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from bounced.db.store import LIST_COLUMNS, Filters
from bounced.http.auth import Scope, acting
from bounced.http.errors import ApiError
from bounced.http.models import AddressPath
from bounced.http.models import Request as Body
from bounced.http.streaming import export_format, export_responses, stream_rows
from bounced.suppressions import Suppressions, plain

__all__ = ["FilterQuery", "Reading", "filters_of", "router"]

router = APIRouter(tags=["list"])
Reading = Annotated[Suppressions, Depends(acting(Scope.READ))]


class FilterQuery(Body):
    """The list filters of the CLI (`bounced list --help`), combined with AND."""

    status: list[Literal["active", "blocked", "former_employee"]] = Field(default_factory=list)
    reason: list[str] = Field(default_factory=list)
    bounce_class: list[Literal["hard", "soft"]] = Field(default_factory=list, alias="class")
    domain: list[str] = Field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    min_returns: int | None = Field(None, ge=0, le=2**31 - 1)
    selection: str | None = None


class PageQuery(FilterQuery):
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def filters_of(query: FilterQuery) -> Filters:
    return Filters(
        status=tuple(query.status),
        reason=tuple(query.reason),
        bounce_class=tuple(query.bounce_class),
        domain=tuple(query.domain),
        since=_utc(query.since),
        until=_utc(query.until),
        min_returns=query.min_returns,
        selection=query.selection,
    )


class ListedAddress(BaseModel):
    address: str
    state: str
    blocked_reason: str | None
    returns: int
    last_reason: str
    last_status: str
    first_return_at: str | None
    last_return_at: str | None
    blocked_at: str | None
    selections: str | None


class Page(BaseModel):
    """One page of the list, in address order; `next_cursor` asks for the next one
    (null on the last page)."""

    items: list[ListedAddress]
    next_cursor: str | None


def _cursor(address: str) -> str:
    return base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_request", "cursor: not a cursor of this API") from None


def listing(sup: Suppressions, request: Request, query: PageQuery) -> Response | dict[str, Any]:
    """A page of the list, or (Accept: text/csv, application/x-ndjson) all of it."""
    filters = filters_of(query)
    fmt = export_format(request)
    if fmt is not None:
        if filters.selection:  # an unknown selection is a 404, before the stream starts
            sup.store.require_selection(filters.selection)
        return stream_rows(fmt, LIST_COLUMNS, map(plain, sup.list(filters)))
    rows = [plain(r) for r in sup.list(filters, after=_after(query.cursor), limit=query.limit)]
    more = len(rows) == query.limit
    return {"items": rows, "next_cursor": _cursor(rows[-1]["address"]) if more else None}


@router.get("/v1/suppressions", response_model=Page, responses=export_responses(Page))
def list_suppressions(
    sup: Reading, request: Request, query: Annotated[PageQuery, Query()]
) -> Response | dict[str, Any]:
    """The addresses matching the filters: a JSON page (`limit`, `cursor`), or the whole
    export streamed with `Accept: text/csv` or `application/x-ndjson`."""
    return listing(sup, request, query)


class History(BaseModel):
    """An address's state, its events, and the admin actions on it (with their actor)."""

    address: dict[str, Any]
    allowed: bool
    events: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    selections: list[str]


@router.get("/v1/suppressions/{address}/history", response_model=History)
def history(address: AddressPath, sup: Reading) -> dict[str, Any]:
    """Everything recorded about one address (404 when the store never saw it)."""
    found = sup.show(address)
    return {
        "address": plain(found["address"]),
        "allowed": found["allowed"],
        "events": [plain(e) for e in found["events"]],
        "audit": [plain(a) for a in found["audit"]],
        "selections": found["selections"],
    }
