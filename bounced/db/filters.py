"""The list filters every list command shares, and the query they narrow.

A module of its own because two repositories use it: reports list the addresses
that match (`bounced list`, `export`), selections add them (`selection add --where`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from bounced.db.tables import address_table, member_table, selection_table

__all__ = ["NO_FILTERS", "Filters", "describe", "filtered"]


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters every list command shares (all optional, combined with AND)."""

    status: tuple[str, ...] = ()
    reason: tuple[str, ...] = ()
    bounce_class: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    min_returns: int | None = None
    selection: str | None = None


NO_FILTERS = Filters()


def filtered(query: Any, f: Filters) -> Any:
    """`query` over the address table, narrowed by the list filters."""
    addresses = address_table.c
    if f.status:
        query = query.where(addresses.state.in_(f.status))
    if f.reason:
        query = query.where(
            or_(addresses.blocked_reason.in_(f.reason), addresses.last_reason.in_(f.reason))
        )
    if f.bounce_class:
        query = query.where(addresses.last_class.in_(f.bounce_class))
    if f.domain:
        query = query.where(addresses.domain.in_(f.domain))
    when = func.coalesce(addresses.blocked_at, addresses.last_return_at)
    if f.since is not None:
        query = query.where(when >= f.since)
    if f.until is not None:
        query = query.where(when < f.until)
    if f.min_returns is not None:
        query = query.where(addresses.returns >= f.min_returns)
    if f.selection:
        members = select(member_table.c.address_id).join(
            selection_table, selection_table.c.id == member_table.c.selection_id
        )
        query = query.where(addresses.id.in_(members.where(selection_table.c.name == f.selection)))
    return query


def describe(f: Filters) -> str:
    """Filters in words for the audit log (`--where` selections)."""
    values = {name: getattr(f, name) for name in Filters.__slots__}
    parts = [f"{k}={v}" for k, v in values.items() if v not in ((), None)]
    return " ".join(parts) or "all addresses"
