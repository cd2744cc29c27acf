"""Retention: bounce events older than `[store] keep_events`, deleted in batches, and on
PostgreSQL the months wholly past the horizon dropped as partitions.

What the policy needs lives in the address rows (returns, first and last return,
the block and its reason), so deleting an event changes no address's state or
counts. What goes with the events is history: `show` lists only the kept events,
`stats`/`deliverability` count only them, `policy apply` replays only them, and a
notice or an original message older than the horizon that comes back again is no
longer recognised as a duplicate. The returns window (`returns_window_days`) reads
counted events, so the horizon must lie beyond it (`Pruned` refuses otherwise).

On PostgreSQL (bounced.db.partitions) a prune first creates the coming months'
partitions, then takes each month that ended before the horizon: its keys are
deleted in batches, then its partition is dropped; last, the events left before the
horizon (the month it falls in, old times in the default partition) go in batches
with their keys, as on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, select

from bounced.db import partitions
from bounced.db.database import Database
from bounced.db.tables import event_table
from bounced.errors import ConfigError

__all__ = ["PRUNE_BATCH", "Pruned", "RetentionRepository"]

#: Events deleted per transaction: each batch is short, so ingest never waits long.
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune did (or, dry, would do): events before `before`, in `batches`
    (transactions that deleted rows), of which those of the `partitions` dropped whole."""

    before: datetime | None
    events: int = 0
    batches: int = 0
    partitions: tuple[str, ...] = ()


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
        self._delete = delete(event_table).where(
            events.received_at < bindparam("before"), events.id.in_(oldest.scalar_subquery())
        )
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
        counts them instead (and names the partitions that would be dropped)."""
        database = self.database
        if database.postgres and not dry_run:
            database.write(lambda conn: partitions.ensure(conn, partitions.ahead(database.clock())))
        before = self.horizon(keep)
        if before is None:
            return Pruned(None)
        if dry_run:
            with database.read() as conn:
                events = conn.execute(self._count, {"before": before}).scalar_one()
                ended = self._ended(conn, before)
            return Pruned(before, events, partitions=tuple(m.name for m in ended))
        done = Pruned(before)
        if database.postgres:
            with database.read() as conn:
                ended = self._ended(conn, before)
            for month in ended:
                done = self._drop(done, month, batch, max_batches)
                if month.name not in done.partitions:
                    return done  # out of batches: its keys are not all deleted yet
        return self._delete_rows(done, before, batch, max_batches)

    @staticmethod
    def _ended(conn: Connection, before: datetime) -> list[partitions.Month]:
        """The partitioned months that ended before `before` (none on SQLite)."""
        if conn.dialect.name != "postgresql":
            return []
        return [m for m in partitions.attached(conn) if m.end <= before]

    def _drop(
        self, done: Pruned, month: partitions.Month, batch: int, max_batches: int | None
    ) -> Pruned:
        """`month`'s keys in batches, then its partition (when the batches allowed)."""
        while max_batches is None or done.batches < max_batches:

            def work(conn: Connection) -> int:
                return partitions.delete_keys(conn, month, batch)

            deleted = self.database.write(work)
            if deleted:
                done = replace(done, batches=done.batches + 1)
            if deleted < batch:
                events = self.database.write(lambda conn: partitions.drop(conn, month))
                return replace(
                    done, events=done.events + events, partitions=(*done.partitions, month.name)
                )
        return done

    def _delete_rows(
        self, done: Pruned, before: datetime, batch: int, max_batches: int | None
    ) -> Pruned:
        """The events before `before` in batches (on PostgreSQL with their keys)."""
        while max_batches is None or done.batches < max_batches:

            def work(conn: Connection) -> int:
                if self.database.postgres:
                    return partitions.delete_events(conn, before, batch)
                return conn.execute(self._delete, {"before": before, "batch": batch}).rowcount

            deleted = self.database.write(work)
            if not deleted:
                break
            done = replace(done, events=done.events + deleted, batches=done.batches + 1)
            if deleted < batch:
                break
        return done
