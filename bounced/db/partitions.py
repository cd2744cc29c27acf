"""The PostgreSQL `event` table, partitioned by month of `received_at` (migration 0008),
and `event_key`, the table that keeps its unique keys.

Why partitions: a year of traffic is 10^8 events, and a prune that deletes them row by
row writes (WAL, dead rows, index entries) about what the ingest wrote; a month past the
horizon dropped whole is a catalog change. Partitions `event_YYYY_MM` hold one UTC month
each; `event_default` catches any time no partition covers (a notice dated years back, a
clock far ahead), so an insert never fails for want of a partition. `ensure` creates the
current month and the `AHEAD` next ones (`bounced db upgrade`, every prune and so every
worker pass); a month that has rows in the default partition already takes them along.

Why a key table: PostgreSQL requires the partition key in every unique key of a
partitioned table, and the store's keys hold across months: `uq_event_notice` (the same
notice is one event) and `uq_event_return` (one counted return per original message).
So on PostgreSQL they are unique indexes of `event_key`, one narrow row per event
(its key columns, `counts` and `received_at`). A statement trigger on `event` inserts
the rows of every statement that inserts events (COPY included), in that statement: a
repeated key fails the insert exactly as the unique index on `event` did, under the same
locks, whatever process wrote the first. Another follows `counts` when `policy apply`
updates it. The store reads duplicates from `event_key` (`key_table`): one index, however
many months. Keys go with their events: with the batch of events they belong to, or
(a partition dropped whole) by their month's `received_at` range just before the drop,
the stragglers of that month in the dropping transaction itself. SQLite keeps one
unpartitioned table with the keys on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)

__all__ = [
    "AHEAD",
    "DEFAULT_PARTITION",
    "Month",
    "ahead",
    "attached",
    "compared",
    "delete_events",
    "delete_keys",
    "drop",
    "ensure",
    "key_table",
    "months",
]

#: Months created ahead of the current one: a worker down for a while, or a clock a
#: little ahead, still finds its month.
AHEAD = 3
DEFAULT_PARTITION = "event_default"
_NAME = re.compile(r"event_(\d{4})_(\d{2})")
#: Serialises the creation of partitions among workers and `db upgrade` (pg_advisory_xact_lock).
_LOCK_KEY = 0x626F756E636570  # "bouncep"
#: A drop waits this long at most for the readers and writers of `event` (then retries).
_DROP_LOCK_TIMEOUT = "2s"
_IN_MONTH = "received_at >= :start AND received_at < :end"

#: `event_key` as the store reads it (PostgreSQL only; made by migration 0008).
key_table = Table(
    "event_key",
    MetaData(),
    Column("address_id", Integer, nullable=False),
    Column("message_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("notice", Text, nullable=False),
    Column("counts", Boolean, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """One UTC calendar month: a partition's range, [start, next month's start)."""

    year: int
    month: int

    @classmethod
    def of(cls, at: datetime) -> Month:
        at = at.astimezone(UTC)
        return cls(at.year, at.month)

    @classmethod
    def named(cls, name: str) -> Month | None:
        """The month of partition `name` (`event_2026_12`); None for any other name."""
        found = _NAME.fullmatch(name)
        return cls(int(found[1]), int(found[2])) if found else None

    @property
    def name(self) -> str:
        return f"event_{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.following().start

    def following(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)


def months(first: Month, last: Month) -> list[Month]:
    """`first` to `last`, both included."""
    found = []
    while first <= last:
        found.append(first)
        first = first.following()
    return found


def ahead(now: datetime) -> list[Month]:
    """The months `ensure` keeps ready: `now`'s and the `AHEAD` after it."""
    first = Month.of(now)
    last = first
    for _ in range(AHEAD):
        last = last.following()
    return months(first, last)


def attached(conn: Connection) -> list[Month]:
    """The months that have a partition, oldest first (the default partition aside)."""
    names = conn.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'event'::regclass"
        )
    )
    return sorted(m for m in map(Month.named, names) if m is not None)


def ensure(conn: Connection, wanted: Iterable[Month]) -> list[str]:
    """Create the partitions of `wanted` that are missing; returns their names. Reads
    the catalog first, so when all exist (nearly always) it locks nothing. Else, under an
    advisory lock (so two workers never race for one name), each missing month is
    made as a plain table, given the rows the default partition holds for it, and
    attached (which builds its indexes and locks `event` only against other DDL)."""
    missing = sorted(set(wanted) - set(attached(conn)))
    if not missing:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    missing = sorted(set(missing) - set(attached(conn)))
    if not missing:
        return []
    # No insert into the default partition between the move and the attach (one for
    # the month would fail the attach); inserts of other times wait a moment.
    conn.exec_driver_sql(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE")
    for month in missing:
        bounds = {"start": month.start, "end": month.end}
        conn.exec_driver_sql(f"CREATE TABLE {month.name} (LIKE event INCLUDING DEFAULTS)")
        conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {_IN_MONTH} RETURNING *)"
                f" INSERT INTO {month.name} SELECT * FROM moved"
            ),
            bounds,
        )
        conn.exec_driver_sql(
            f"ALTER TABLE event ATTACH PARTITION {month.name}"
            f" FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
        )
    return [m.name for m in missing]


_MONTH_KEYS = text(f"DELETE FROM event_key WHERE {_IN_MONTH}")
_MONTH_KEYS_BATCH = text(
    "DELETE FROM event_key WHERE ctid = ANY(ARRAY("
    f"SELECT ctid FROM event_key WHERE {_IN_MONTH} LIMIT :batch))"
)


def delete_keys(conn: Connection, month: Month, batch: int) -> int:
    """Delete up to `batch` keys of `month`'s events (before its partition is dropped)."""
    bounds = {"start": month.start, "end": month.end, "batch": batch}
    return conn.execute(_MONTH_KEYS_BATCH, bounds).rowcount


def drop(conn: Connection, month: Month) -> int:
    """Drop `month`'s partition (its keys already deleted: `delete_keys`); returns how
    many events it held. `event` is locked for the drop (a catalog change, over in
    milliseconds; waited for `_DROP_LOCK_TIMEOUT` at most, then the transaction is
    retried), and the keys of events that arrived for that month meanwhile go with it."""
    events = conn.scalar(text(f"SELECT count(*) FROM {month.name}")) or 0
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
    conn.exec_driver_sql("LOCK TABLE event IN ACCESS EXCLUSIVE MODE")
    conn.execute(_MONTH_KEYS, {"start": month.start, "end": month.end})
    conn.exec_driver_sql(f"DROP TABLE {month.name}")
    return int(events)


#: A batch of the events before `before` that no dropped partition took (the month
#: straddling the horizon, old times in the default partition), with their keys.
_DELETE_EVENTS = text(
    "WITH gone AS (DELETE FROM event WHERE received_at < :before AND id IN"
    " (SELECT id FROM event WHERE received_at < :before ORDER BY id LIMIT :batch)"
    " RETURNING address_id, message_key, kind, status, notice),"
    " keys AS (DELETE FROM event_key k USING gone g WHERE k.address_id = g.address_id"
    " AND k.message_key = g.message_key AND k.kind = g.kind AND k.status = g.status"
    " AND k.notice = g.notice)"
    " SELECT count(*) FROM gone"
)


def delete_events(conn: Connection, before: datetime, batch: int) -> int:
    """Delete up to `batch` events received before `before`, and their keys."""
    return int(conn.scalar(_DELETE_EVENTS, {"before": before, "batch": batch}) or 0)


#: What migration 0008 makes on PostgreSQL beside the models (bounced.db.tables): the
#: key table and the partitions, and the event table's own index by address.
_APART_TABLES = {"event_key", DEFAULT_PARTITION}
_APART_INDEXES = {"ix_event_address"}
#: The models' keys of `event` that live on `event_key` in PostgreSQL.
_MOVED_KEYS = {"uq_event_notice", "uq_event_return"}


def compared(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` for comparing a `dialect` database with the models:
    on PostgreSQL, what this module keeps apart is left out (autogenerate would drop
    the partitions; the schema test would find the keys missing on `event`)."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
        if dialect != "postgresql" or name is None:
            return True
        if kind == "table":
            return name not in _APART_TABLES and Month.named(name) is None
        table = getattr(obj, "table", None)
        if getattr(table, "name", None) != "event":
            return True
        return name not in (_APART_INDEXES if reflected else _MOVED_KEYS)

    return include
