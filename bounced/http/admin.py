"""Changes to the list (scope `admin`), each audited with the token's name as actor:
block, unmark, former employee (and undo), erase, the allow-list, selections; and the
figures about it (scope `read`): stats, deliverability, selections and the allow-list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from bounced.http.auth import Scope, acting
from bounced.http.models import Address, AddressPath
from bounced.http.models import Request as Body
from bounced.http.streaming import export_responses
from bounced.http.suppressions import FilterQuery, Page, PageQuery, Reading, filters_of, listing
from bounced.suppressions import AdminResult, Suppressions, UnknownAddress, plain

__all__ = ["router"]

router = APIRouter(tags=["admin"])
Admin = Annotated[Suppressions, Depends(acting(Scope.ADMIN))]
_MAX = 100_000


class Addresses(Body):
    addresses: list[Address] = Field(min_length=1, max_length=_MAX)


class BlockRequest(Addresses):
    note: str = ""


class Changed(BaseModel):
    """The addresses an action changed, and those the store did not know."""

    done: list[str]
    unknown: list[str]


def _one(result: AdminResult) -> dict[str, Any]:
    if result.unknown:
        raise UnknownAddress(result.unknown)
    return {"done": result.done, "unknown": []}


def _changed(result: AdminResult) -> dict[str, Any]:
    return {"done": result.done, "unknown": result.unknown}


@router.post("/v1/suppressions", response_model=Changed)
def block(body: BlockRequest, sup: Admin) -> dict[str, Any]:
    """Block addresses by hand (those never seen are added)."""
    return _changed(sup.block(body.addresses, note=body.note))


@router.delete("/v1/suppressions/{address}", response_model=Changed)
def unmark(address: AddressPath, sup: Admin) -> dict[str, Any]:
    """Remove the bounce mark: unblock and reset the count (the history stays)."""
    return _one(sup.unmark([address]))


@router.post("/v1/former-employees", response_model=Changed)
def former_employee(body: Addresses, sup: Admin) -> dict[str, Any]:
    """Mark addresses as former employees (blocked, with a state of their own)."""
    return _changed(sup.former_employee(body.addresses))


@router.delete("/v1/former-employees/{address}", response_model=Changed)
def undo_former_employee(address: AddressPath, sup: Admin) -> dict[str, Any]:
    """Undo the former-employee mark."""
    return _one(sup.former_employee([address], undo=True))


@router.delete("/v1/addresses/{address}", response_model=Changed)
def erase(address: AddressPath, sup: Admin) -> dict[str, Any]:
    """Erase an address and its history (the erasure itself is audited)."""
    return _one(sup.delete([address]))


# --- the allow-list ------------------------------------------------------------------------


class AllowEntry(BaseModel):
    entry: str
    actor: str
    created_at: str | None


class AllowRequest(Body):
    entries: list[str] = Field(min_length=1, max_length=_MAX)


class Entries(BaseModel):
    entries: list[str]


@router.get("/v1/allow", response_model=list[AllowEntry])
def allow_list(sup: Reading) -> list[dict[str, Any]]:
    """Entries never blocked automatically (config.toml's, then the store's)."""
    return [plain(e) for e in sup.allow_list()]


@router.post("/v1/allow", response_model=Entries)
def allow_add(body: AllowRequest, sup: Admin) -> dict[str, Any]:
    """Add addresses or `@domain` entries; returns those that were new."""
    return {"entries": sup.allow(body.entries)}


@router.delete("/v1/allow/{entry}", response_model=Entries)
def allow_remove(entry: str, sup: Admin) -> dict[str, Any]:
    """Remove one entry; returns it when it was there."""
    return {"entries": sup.allow([entry], remove=True)}


# --- selections ----------------------------------------------------------------------------


class Selection(BaseModel):
    name: str
    members: int
    created_at: str | None


class SelectionAdd(Body):
    """Addresses by list, or every address matching `filter`: one of the two."""

    addresses: list[Address] | None = Field(None, min_length=1, max_length=_MAX)
    filter: FilterQuery | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SelectionAdd:
        if (self.addresses is None) == (self.filter is None):
            raise ValueError("give either addresses or filter")
        return self


class Count(BaseModel):
    count: int


@router.get("/v1/selections", response_model=list[Selection])
def selections(sup: Reading) -> list[dict[str, Any]]:
    """Every selection with its member count."""
    return [plain(s) for s in sup.selections()]


@router.post("/v1/selections/{name}/members", response_model=Count)
def selection_add(name: str, body: SelectionAdd, sup: Admin) -> dict[str, int]:
    """Add members (the selection is created when new); returns how many were added."""
    if body.filter is not None:
        return {"count": sup.selection_add_where(name, filters_of(body.filter))}
    return {"count": sup.selection_add(name, body.addresses or [])}


@router.post("/v1/selections/{name}/remove", response_model=Count)
def selection_remove(name: str, body: Addresses, sup: Admin) -> dict[str, int]:
    """Remove members; returns how many were members."""
    return {"count": sup.selection_remove(name, body.addresses)}


@router.get("/v1/selections/{name}/members", response_model=Page, responses=export_responses(Page))
def selection_members(
    name: str, sup: Reading, request: Request, query: Annotated[PageQuery, Query()]
) -> Response | dict[str, Any]:
    """The members, as the list (filters, pages) or the whole export (text/csv, NDJSON)."""
    return listing(sup, request, query.model_copy(update={"selection": name}))


# --- figures -------------------------------------------------------------------------------


class Stats(BaseModel):
    """Counts by state, by blocked reason and by domain, and returns per day."""

    state: dict[str, int]
    reason: dict[str, int]
    domain: dict[str, int]
    returns_per_day: dict[str, int]


class StatsQuery(Body):
    days: int = Field(30, ge=1, le=3650)


@router.get("/v1/stats", response_model=Stats)
def stats(sup: Reading, query: Annotated[StatsQuery, Query()]) -> dict[str, Any]:
    """The list in figures (returns per day over the last `days`)."""
    return {key: dict(pairs) for key, pairs in sup.stats(query.days).items()}


class SenderFailures(BaseModel):
    domain: str
    reason: str
    messages: int
    first_at: str | None
    last_at: str | None


class SinceQuery(Body):
    since: datetime | None = None


@router.get("/v1/deliverability", response_model=list[SenderFailures])
def deliverability(sup: Reading, query: Annotated[SinceQuery, Query()]) -> list[dict[str, Any]]:
    """Sender-side failures (blocks, reputation, rate limits) per receiving domain and
    reason: the sender's problems, never counted against recipients."""
    since = query.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return [plain(r) for r in sup.deliverability(since)]
