"""The sending log's rows: sent messages, retry plans, claims, the dispatch log and the
cursor over the bounce events.

`bounced.sending.log.SendingLog` decides (with the pure plans of
`bounced.sending.plans`) and this module reads and writes, inside the transactions
SendingLog opens with `Database.write`: the methods that take a `conn` run in the
caller's transaction. Plan and sent statuses arrive as the values of the sending
side's enums; rows go out as SQLAlchemy rows (attribute access) or plain dicts.

Plans are claimed with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (one writer
at a time on SQLite), so two workers never take the same plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from bounced.db.database import CHUNK, Database
from bounced.db.tables import (
    address_table,
    cursor_table,
    dispatch_table,
    event_table,
    plan_table,
    sent_table,
)

__all__ = ["PLAN_FIELDS", "SendingRepository", "without_raw"]

#: The plan columns a change of plan writes (`save_plan`, `save_plans`).
PLAN_FIELDS = (
    "status",
    "reason",
    "due_at",
    "attempt",
    "last_attempt_at",
    "dispatch_failures",
    "note",
    "updated_at",
)
_CURSOR = "sending-log"
_EVENT_COLUMNS = (
    "id",
    "message_key",
    "kind",
    "bounce_class",
    "reason",
    "status",
    "reply_code",
    "detector",
    "diagnostic",
    "received_at",
)
_sent, _plans, _dispatches = sent_table.c, plan_table.c, dispatch_table.c

#: One statement for a batch of plan updates (executemany).
_UPDATE_PLAN = (
    update(plan_table)
    .where(_plans.id == bindparam("plan_id"))
    .values({name: bindparam(name) for name in (*PLAN_FIELDS, "claimed_by", "claimed_until")})
)


def without_raw(row: Any) -> dict[str, Any]:
    """A sent message's row without its bytes (`raw_bytes` says how many there were)."""
    values = dict(row._mapping)
    raw = values.pop("raw", None)
    values["raw_bytes"] = len(raw) if raw is not None else 0
    return values


class SendingRepository:
    """The sending log's tables in one `Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _skip(self, query: Any) -> Any:
        """Rows another worker holds are left to it (PostgreSQL; SQLite has one writer)."""
        return query.with_for_update(skip_locked=True) if self.database.postgres else query

    # --- sent messages ------------------------------------------------------------------

    def log_sent(self, values: dict[str, Any], changes: dict[str, Any]) -> None:
        """Insert a sent message, or update `changes` on the one with its address and key."""

        def work(conn: Connection) -> None:
            now = self.database.clock()
            stmt = self.database.insert(sent_table).values(
                {**values, "sent_at": now, "updated_at": now}
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["address", "message_key"], set_={**changes, "updated_at": now}
                )
            )

        self.database.write(work)

    def sent(self, address: str, key: str) -> dict[str, Any] | None:
        """One sent message (`without_raw`), None when not logged."""
        with self.database.read() as conn:
            row = conn.execute(
                select(sent_table).where(_sent.address == address, _sent.message_key == key)
            ).first()
        return None if row is None else without_raw(row)

    def sent_rows(
        self,
        columns: Sequence[str],
        *,
        status: Sequence[str] = (),
        domain: Sequence[str] = (),
        reason: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The sending log's `columns`, filtered, oldest first, streamed."""
        query = select(*(_sent[c] for c in columns))
        if status:
            query = query.where(_sent.status.in_(status))
        if domain:
            query = query.where(_sent.domain.in_(domain))
        if reason:
            query = query.where(_sent.reason.in_(reason))
        if since is not None:
            query = query.where(_sent.sent_at >= since)
        if until is not None:
            query = query.where(_sent.sent_at < until)
        with self.database.read() as conn:
            result = conn.execution_options(yield_per=CHUNK).execute(query.order_by(_sent.id))
            for row in result:
                yield dict(row._mapping)

    @staticmethod
    def sent_of(conn: Connection, address: str, key: str) -> Any:
        """The id and status of the message to `address` with message key `key`."""
        query = select(_sent.id, _sent.status).where(
            _sent.address == address, _sent.message_key == key
        )
        return conn.execute(query).first()

    @staticmethod
    def update_sent(conn: Connection, ids: Sequence[int], **values: Any) -> None:
        """Write `values` on the sent messages `ids`."""
        conn.execute(update(sent_table).where(_sent.id.in_(list(ids))).values(**values))

    # --- the cursor over bounce events --------------------------------------------------

    def new_events(self, conn: Connection, limit: int) -> list[Any] | None:
        """Up to `limit` bounce events after the cursor, with their address, in id order;
        None when another worker is reading them (PostgreSQL)."""
        cursor = select(cursor_table.c.event_id).where(cursor_table.c.name == _CURSOR)
        first = self.database.insert(cursor_table).values(name=_CURSOR, event_id=0)
        conn.execute(first.on_conflict_do_nothing())
        if self.database.postgres:
            last = conn.scalar(cursor.with_for_update(skip_locked=True))
            if last is None:
                return None  # another worker is reading them right now
            # Wait for the transactions writing events to finish, and hold new ones off
            # while reading: ids commit out of order, and a cursor must never skip one.
            conn.exec_driver_sql("LOCK TABLE event IN SHARE MODE")
        else:
            last = conn.scalar(cursor)
        events = event_table.c
        query = (
            select(*(events[c] for c in _EVENT_COLUMNS), address_table.c.address)
            .join(address_table, address_table.c.id == events.address_id)
            .where(events.id > last)
            .order_by(events.id)
            .limit(limit)
        )
        return list(conn.execute(query).all())

    @staticmethod
    def move_cursor(conn: Connection, event_id: int) -> None:
        """The events up to `event_id` have been read."""
        conn.execute(
            update(cursor_table).where(cursor_table.c.name == _CURSOR).values(event_id=event_id)
        )

    # --- plans --------------------------------------------------------------------------

    @staticmethod
    def plans_of_address(conn: Connection, address: str, statuses: Sequence[str]) -> list[Any]:
        """The plans of `address` in `statuses`, locked."""
        query = select(plan_table).where(_plans.address == address, _plans.status.in_(statuses))
        return list(conn.execute(query.with_for_update()).all())

    @staticmethod
    def plans_of_sent(conn: Connection, sent_id: int) -> list[Any]:
        """The plans of one sent message, newest first, locked."""
        query = select(plan_table).where(_plans.sent_id == sent_id).order_by(_plans.id.desc())
        return list(conn.execute(query.with_for_update()).all())

    @staticmethod
    def plans_by_id(
        conn: Connection, plan_ids: Sequence[int], statuses: Sequence[str]
    ) -> list[Any]:
        """The plans of `plan_ids` in `statuses`, locked."""
        query = select(plan_table).where(_plans.id.in_(list(plan_ids)), _plans.status.in_(statuses))
        return list(conn.execute(query.with_for_update()).all())

    @staticmethod
    def add_plan(conn: Connection, values: dict[str, Any]) -> None:
        """Start a plan (`values`: PLAN_FIELDS, its message, address and start)."""
        conn.execute(plan_table.insert().values(values))

    @staticmethod
    def save_plan(conn: Connection, plan_id: int, values: dict[str, Any]) -> None:
        """Write `values` (of PLAN_FIELDS, and claims) on one plan."""
        conn.execute(update(plan_table).where(_plans.id == plan_id).values(**values))

    @staticmethod
    def save_plans(conn: Connection, values: Sequence[dict[str, Any]]) -> None:
        """Write each of `values` (`plan_id`, PLAN_FIELDS and the claim) in one statement."""
        conn.execute(_UPDATE_PLAN, list(values))

    def quiet(self, conn: Connection, status: str, before: datetime) -> list[Any]:
        """Up to CHUNK plans in `status` last attempted at or before `before`, locked."""
        query = select(plan_table).where(_plans.status == status, _plans.last_attempt_at <= before)
        return list(conn.execute(self._skip(query).limit(CHUNK)).all())

    def unescalated(self, status: str) -> list[Any]:
        """Up to CHUNK plans in `status` not yet escalated, with their message's ids."""
        query = (
            select(
                _plans.id,
                _plans.address,
                _plans.reason,
                _plans.note,
                _sent.message_id,
                _sent.message_key,
            )
            .join(sent_table, _sent.id == _plans.sent_id)
            .where(_plans.status == status, _plans.escalated_at.is_(None))
            .limit(CHUNK)
        )
        with self.database.read() as conn:
            return list(conn.execute(query).all())

    def mark_escalated(self, plan_ids: Sequence[int], now: datetime) -> None:
        """The plans' retries_exhausted events are recorded: never escalate them again."""
        stmt = (
            update(plan_table)
            .where(_plans.id.in_(list(plan_ids)))
            .values(escalated_at=now, updated_at=now)
        )
        self.database.write(lambda conn: conn.execute(stmt))

    # --- claims and the dispatch log ----------------------------------------------------

    def due(self, conn: Connection, status: str, now: datetime, limit: int) -> list[Any]:
        """Up to `limit` plans in `status` due at `now` and not claimed, with their message
        and their address's state (None for an address the store does not know)."""
        query = (
            select(plan_table, _sent.message_id, _sent.subject, _sent.raw, address_table.c.state)
            .join(sent_table, _sent.id == _plans.sent_id)
            .outerjoin(address_table, address_table.c.address == _plans.address)
            .where(_plans.status == status, _plans.due_at <= now, _unclaimed(now))
            .order_by(_plans.due_at, _plans.id)
            .limit(limit)
        )
        if self.database.postgres:
            query = query.with_for_update(skip_locked=True, of=plan_table)
        return list(conn.execute(query).all())

    @staticmethod
    def claim(
        conn: Connection, plan_ids: Sequence[int], worker: str, until: datetime, now: datetime
    ) -> None:
        """Hold `plan_ids` for `worker` until `until`."""
        conn.execute(
            update(plan_table)
            .where(_plans.id.in_(list(plan_ids)))
            .values(claimed_by=worker, claimed_until=until, updated_at=now)
        )

    @staticmethod
    def claimed(
        conn: Connection, plan_ids: Sequence[int], worker: str, status: str
    ) -> dict[int, Any]:
        """Those of `plan_ids` that `worker` still holds in `status`, locked, by id."""
        query = (
            select(plan_table)
            .where(
                _plans.id.in_(list(plan_ids)), _plans.claimed_by == worker, _plans.status == status
            )
            .order_by(_plans.id)
            .with_for_update()
        )
        return {row.id: row for row in conn.execute(query)}

    @staticmethod
    def log_dispatches(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Append to the dispatch log (its unique index refuses a second hand-over)."""
        conn.execute(dispatch_table.insert(), list(rows))

    # --- reading ------------------------------------------------------------------------

    def plan_rows(
        self,
        columns: Sequence[str],
        *,
        status: Sequence[str] = (),
        address: str | None = None,
        due: tuple[str, datetime] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Plans' `columns` (`message_id` from their message), filtered; `due` = (status,
        now): plans in that status, due and unclaimed at now."""
        query = select(*(_plans[c] for c in columns if c != "message_id"), _sent.message_id)
        query = query.join(sent_table, _sent.id == _plans.sent_id)
        if status:
            query = query.where(_plans.status.in_(status))
        if address:
            query = query.where(_plans.address == address)
        if due:
            scheduled, now = due
            query = query.where(_plans.status == scheduled, _plans.due_at <= now, _unclaimed(now))
        with self.database.read() as conn:
            result = conn.execution_options(yield_per=CHUNK).execute(query.order_by(_plans.id))
            for row in result:
                yield dict(row._mapping)

    def plan(self, plan_id: int) -> dict[str, Any] | None:
        """One plan, its message and its dispatch history; None when unknown."""
        with self.database.read() as conn:
            row = conn.execute(select(plan_table).where(_plans.id == plan_id)).first()
            if row is None:
                return None
            message = conn.execute(select(sent_table).where(_sent.id == row.sent_id)).first()
            history = conn.execute(
                select(dispatch_table)
                .where(_dispatches.plan_id == plan_id)
                .order_by(_dispatches.at, _dispatches.id)
            ).all()
        return {
            "plan": dict(row._mapping),
            "sent": without_raw(message),
            "dispatches": [dict(h._mapping) for h in history],
        }

    def due_count(self, status: str, now: datetime) -> int:
        """How many plans in `status` are due at `now` and not claimed."""
        query = select(func.count()).where(
            _plans.status == status, _plans.due_at <= now, _unclaimed(now)
        )
        with self.database.read() as conn:
            return int(conn.execute(query).scalar_one())

    def counts(self) -> dict[str, int]:
        """Plans per status."""
        with self.database.read() as conn:
            rows = conn.execute(select(_plans.status, func.count()).group_by(_plans.status))
            return {status: n for status, n in rows}


def _unclaimed(now: datetime) -> Any:
    return or_(_plans.claimed_until.is_(None), _plans.claimed_until < now)
