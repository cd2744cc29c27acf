"""Reading the audit log: who did what to which address, and when (`bounced audit`).

The store writes the log inside each admin action's own transaction
(`SuppressionRepository.audit`); this module only reads it, streamed in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bounced.db.database import CHUNK, Database
from bounced.db.tables import Audit

__all__ = ["AUDIT_COLUMNS", "AuditFilters", "audit_rows"]

#: The columns of `bounced audit`, in order.
AUDIT_COLUMNS = ("at", "actor", "action", "address", "detail")

_LOG = Audit.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Which entries to read (all optional, combined with AND)."""

    address: str | None = None
    actor: str | None = None
    action: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def audit_rows(database: Database, filters: AuditFilters) -> Iterator[dict[str, Any]]:
    """Entries matching `filters`, oldest first, streamed (never all in memory)."""
    query = select(*(_LOG.c[c] for c in AUDIT_COLUMNS))
    if filters.address is not None:
        query = query.where(_LOG.c.address == filters.address)
    if filters.actor is not None:
        query = query.where(_LOG.c.actor == filters.actor)
    if filters.action:
        query = query.where(_LOG.c.action.in_(filters.action))
    if filters.since is not None:
        query = query.where(_LOG.c.at >= filters.since)
    if filters.until is not None:
        query = query.where(_LOG.c.at < filters.until)
    with database.read() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(
            query.order_by(_LOG.c.at, _LOG.c.id)
        )
        try:
            for row in result:
                yield dict(row._mapping)
        finally:  # a reader that stops early must not leave a server-side cursor open
            result.close()
