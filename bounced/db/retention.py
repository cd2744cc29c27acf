"""Retention: bounce events older than `[store] keep_events`, deleted in batches.

What the policy needs lives in the address rows (returns, first and last return,
the block and its reason), so deleting an event changes no address's state or
counts. What goes with the events is history: `show` lists only the kept events,
`stats`/`deliverability` count only them, `policy apply` replays only them, and a
notice or an original message older than the horizon that comes back again is no
longer recognised as a duplicate. The returns window (`returns_window_days`) reads
counted events, so the horizon must lie beyond it (`Pruned` refuses otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, select

from bounced.db.database import Database
from bounced.db.tables import event_table
from bounced.errors import ConfigError

__all__ = ["PRUNE_BATCH", "Pruned", "RetentionRepository"]

#: Events deleted per transaction: each batch is short, so ingest never waits long.
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune did (or, dry, would do): events before `before`, in `batches`."""

    before: datetime | None
    events: int = 0
    batches: int = 0


class RetentionRepository:
    """Deletes the events past the configured horizon."""

    def __init__(self, database: Database) -> None:
        self.database = database
        events = event_table.c
        oldest = (
            select(events.id)
            .where(events.received_at < bindparam("before"))
            .order_by(events.id)
            .limit(bindparam("batch"))
        )
        self._delete = delete(event_table).where(events.id.in_(oldest.scalar_subquery()))
        self._count = select(func.count()).where(events.received_at < bindparam("before"))

    def horizon(self, keep: timedelta | None = None) -> datetime | None:
        """The time before which events go: now - keep_events (None keeps all)."""
        keep = self.database.settings.store.keep_events if keep is None else keep
        if not keep:
            return None
        window = timedelta(days=self.database.settings.policy.returns_window_days)
        if window and keep <= window:
            raise ConfigError(
                f"[store] keep_events ({keep.days}d) must be longer than "
                f"[policy] returns_window_days ({window.days}): the window reads those events"
            )
        return self.database.clock() - keep

    def prune(
        self,
        *,
        dry_run: bool = False,
        batch: int = PRUNE_BATCH,
        max_batches: int | None = None,
        keep: timedelta | None = None,
    ) -> Pruned:
        """Delete the events past the horizon, `batch` per transaction, until none are
        left or `max_batches` ran (the worker prunes a little each pass). `dry_run`
        counts them instead."""
        before = self.horizon(keep)
        if before is None:
            return Pruned(None)
        if dry_run:
            with self.database.read() as conn:
                return Pruned(before, conn.execute(self._count, {"before": before}).scalar_one())
        events = batches = 0
        while max_batches is None or batches < max_batches:

            def work(conn: Connection) -> int:
                return conn.execute(self._delete, {"before": before, "batch": batch}).rowcount

            deleted = self.database.write(work)
            if not deleted:
                break
            events += deleted
            batches += 1
            if deleted < batch:
                break
        return Pruned(before, events, batches)
