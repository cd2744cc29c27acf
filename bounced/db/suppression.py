"""The suppression list's rows: recording bounces, looking addresses up, admin actions.

It applies what `bounced.policy` decides, atomically: every unit of work is one
write transaction that first takes the address rows it changes (in sorted order,
so two writers never deadlock), and the unique keys in `bounced.db.tables`
refuse a bounce recorded twice even if everything else went wrong. The address
rows' helpers (create, lock, read and save a state, audit) are public for the
sibling repositories that change addresses in their own transactions.

Addresses reaching this module are already normalised (`bounced.addresses`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, or_, select, update

from bounced.addresses import domain_of, normalize_allow_entry
from bounced.db.database import CHUNK, Database, batched, utc
from bounced.db.partitions import key_table
from bounced.db.tables import (
    address_table,
    allow_table,
    audit_table,
    event_table,
    member_table,
)
from bounced.dsn import TEXT_FACTS, Bounce
from bounced.policy import (
    Action,
    AddressState,
    AdminAction,
    BlockReason,
    Decision,
    Event,
    State,
    administer,
    decide,
    set_allowed,
)

__all__ = ["Details", "Incoming", "Recorded", "SuppressionRepository"]


class Details(NamedTuple):
    """One address row as `details` reads it (times aware, in UTC)."""

    address: str
    state: str
    blocked_reason: str | None
    blocked_at: datetime | None
    returns: int
    last_reason: str
    last_status: str
    last_class: str
    last_return_at: datetime | None


_DETAIL_TIMES = tuple(f in ("blocked_at", "last_return_at") for f in Details._fields)

_STATE_COLUMNS = (
    "returns",
    "first_return_at",
    "last_return_at",
    "auto_reason",
    "manual",
    "former_employee",
    "blocked_at",
    "last_reason",
    "last_status",
    "last_class",
)
#: The columns of uq_event_notice: an event with the key of a stored one is a duplicate.
_EVENT_KEY = ("address_id", "message_key", "kind", "status", "notice")
_LOOKUP = "SELECT address, state, blocked_reason FROM address WHERE address"
_DETAILS = f"SELECT {', '.join(Details._fields)} FROM address WHERE address"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One bounce row to record, with its normalised address, the key of the original
    message (what returns are counted by) and the identity of the notice that said it
    (what duplicates are recognised by; bounced.keys.notice_id)."""

    address: str
    message_key: str
    bounce: Bounce
    source: str
    received_at: datetime
    notice: str = ""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one row did; `decision` is None for a duplicate."""

    address: str
    decision: Decision | None

    @property
    def duplicate(self) -> bool:
        return self.decision is None


class SuppressionRepository:
    """Address rows, their bounce events, the allow-list and the audit log."""

    def __init__(self, database: Database) -> None:
        self.database = database
        policy = database.settings.policy
        self.policy = policy
        fold = policy.case_sensitive_local_part
        self.config_allow = frozenset(
            normalize_allow_entry(e, case_sensitive_local_part=fold) for e in policy.allow
        )
        self._sql = _statements(database.insert, database.postgres)

    # --- address rows, for this and the sibling repositories ----------------------------

    def ensure(self, conn: Connection, addresses: Sequence[str], now: datetime) -> None:
        """Create missing address rows (sorted, so concurrent writers lock in one order)."""
        rows = [_new_address(a, now) for a in sorted(set(addresses))]
        for chunk in batched(rows, CHUNK):
            conn.execute(self._sql.new_address, chunk)

    def take(
        self, conn: Connection, addresses: Iterable[str], now: datetime, *, skip: bool = False
    ) -> dict[str, Any]:
        """The address rows, locked for this transaction, created when missing: `lock`
        first (at a steady state every address exists: one round trip), then the
        missing rows inserted and returned (an inserted row is locked by its insert),
        then `lock` again for those another writer inserted meanwhile. `skip`: leave
        out the rows another writer holds (PostgreSQL's SKIP LOCKED) instead of waiting."""
        wanted = sorted(set(addresses))
        found = self.lock(conn, wanted, skip=skip)
        missing = [_new_address(a, now) for a in wanted if a not in found]
        for chunk in batched(missing, CHUNK):
            for row in conn.execute(self._sql.new_address_rows, chunk):
                found[row.address] = row
        raced = [row["address"] for row in missing if row["address"] not in found]
        return found | self.lock(conn, raced, skip=skip) if raced else found

    def lock(
        self, conn: Connection, addresses: Iterable[str], *, skip: bool = False
    ) -> dict[str, Any]:
        """The address rows, locked for this transaction, by address (`skip`: see take)."""
        found: dict[str, Any] = {}
        statement = self._sql.lock_skip if skip else self._sql.lock
        for chunk in batched(sorted(set(addresses)), CHUNK):
            for row in conn.execute(statement, {"names": chunk}):
                found[row.address] = row
        return found

    def allowed(self, conn: Connection, addresses: Iterable[str]) -> set[str]:
        """Those of `addresses` on the allow-list (config.toml or the store), in one query."""
        wanted = {a: (a, "@" + domain_of(a)) for a in addresses}
        entries = {e for pair in wanted.values() for e in pair}
        listed = self.config_allow | set(conn.scalars(self._sql.allowed, {"entries": entries}))
        return {a for a, pair in wanted.items() if not listed.isdisjoint(pair)}

    @staticmethod
    def state(row: Any, allowed: bool) -> AddressState:
        """The policy's view of an address row."""
        values = {name: getattr(row, name) for name in _STATE_COLUMNS}
        for name in ("first_return_at", "last_return_at", "blocked_at"):
            values[name] = utc(values[name])
        values["auto_reason"] = BlockReason(row.auto_reason) if row.auto_reason else None
        return AddressState(**values, allowed=allowed)

    def save(
        self, conn: Connection, row: Any, state: AddressState, now: datetime, **extra: Any
    ) -> None:
        """Store `state` on the address `row`."""
        conn.execute(self._sql.save, _saved(row, state, now, **extra))

    def audit(
        self,
        conn: Connection,
        action: str,
        addresses: Iterable[str],
        actor: str,
        detail: str = "",
    ) -> None:
        """Log an admin action on `addresses`, inside the caller's write transaction."""
        now = self.database.clock()
        rows = [
            {"at": now, "actor": actor, "action": action, "address": a, "detail": detail}
            for a in addresses
        ]
        for chunk in batched(rows, CHUNK):
            conn.execute(audit_table.insert(), list(chunk))

    # --- recording bounces --------------------------------------------------------------

    def record(self, rows: Sequence[Incoming]) -> list[Recorded]:
        """Record bounce rows (one message or a batch of messages), in order per address.

        The address rows are locked first, so no other writer adds events for them
        before the transaction ends (`_record_locked`). On PostgreSQL the missing address
        rows are created first in a short transaction of their own, and the batch then
        takes only the rows no other writer holds (SKIP LOCKED): the rows of the
        addresses it skipped follow in a second transaction that waits for them. So
        concurrent writers wait only where they share an address, not for each other's
        whole batch."""
        if not rows:
            return []
        done: dict[int, Recorded] = {}
        pending = list(enumerate(rows))
        skip = self.database.postgres
        if skip:
            self.database.write(
                lambda conn: self.ensure(conn, [r.address for r in rows], self.database.clock()),
                durable=False,
            )
        while pending:

            def work(
                conn: Connection, todo: list[tuple[int, Incoming]] = pending, skip: bool = skip
            ) -> tuple[dict[int, Recorded], list[tuple[int, Incoming]]]:
                return self._record_locked(conn, todo, skip)

            recorded, pending = self.database.write(work)
            done |= recorded
            skip = False
        return [done[i] for i in range(len(rows))]

    def _record_locked(
        self, conn: Connection, rows: Sequence[tuple[int, Incoming]], skip: bool
    ) -> tuple[dict[int, Recorded], list[tuple[int, Incoming]]]:
        """Record the `rows` (by their index in the batch) whose address rows this
        transaction locks; returns what was recorded and the rows left for later.

        What the events table holds for them is read once, each row is decided in order
        against that and the rows before it, and the new events and the changed states
        are written in one statement each (a round trip per row was most of the cost on
        PostgreSQL). The events are inserted without ON CONFLICT: under the locks a
        conflict is a bug, refused loudly."""
        now = self.database.clock()
        locked = self.take(conn, (r.address for _, r in rows), now, skip=skip)
        later = [(i, r) for i, r in rows if r.address not in locked]
        rows = [(i, r) for i, r in rows if r.address in locked]
        allowed = self.allowed(conn, locked)
        states = {a: self.state(row, a in allowed) for a, row in locked.items()}
        recent = self._recent_by_address(conn, locked)
        values = [_event_values(r, locked[r.address].id) for _, r in rows]
        known, counted = self._known(conn, values)
        out: dict[int, Recorded] = {}
        new: list[dict[str, Any]] = []
        changed: dict[str, AddressState] = {}
        for (index, item), event_values in zip(rows, values, strict=True):
            key = tuple(event_values[name] for name in _EVENT_KEY)
            if key in known:
                out[index] = Recorded(item.address, None)
                continue
            known.add(key)
            state = states[item.address]
            if recent is not None:
                state = replace(state, recent_returns=recent[item.address])
            event = Event.of(item.bounce, item.received_at, repeat=key[:2] in counted)
            decision = decide(state, event, self.policy)
            if decision.counts:
                counted.add(key[:2])
                if recent is not None:
                    recent[item.address] = self._with_return(
                        recent[item.address], locked[item.address], item.received_at
                    )
            new.append(event_values | {"counts": decision.counts})
            if decision.state != state:
                states[item.address] = changed[item.address] = decision.state
            out[index] = Recorded(item.address, decision)
        if new:
            conn.execute(self._sql.new_events, new)
        if changed:
            saves = [_saved(locked[a], s, now) for a, s in changed.items()]
            conn.execute(self._sql.save, saves)
        return out, later

    def _known(
        self, conn: Connection, events: Sequence[dict[str, Any]]
    ) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """The keys (`_EVENT_KEY`) of the stored events that `events` may repeat, and the
        (address, message) pairs among them that counted, in a query per CHUNK events."""
        keys: set[tuple[Any, ...]] = set()
        counted: set[tuple[Any, ...]] = set()
        for chunk in batched(events, CHUNK):
            ids = sorted({e["address_id"] for e in chunk})
            messages = sorted({e["message_key"] for e in chunk})
            for row in conn.execute(self._sql.known, {"ids": ids, "keys": messages}):
                keys.add(tuple(row[: len(_EVENT_KEY)]))
                if row.counts:
                    counted.add(tuple(row[:2]))
        return keys, counted

    def _recent_by_address(
        self, conn: Connection, locked: dict[str, Any]
    ) -> dict[str, tuple[datetime, ...]] | None:
        """Per address, the times of its newest counted returns since its last unmark,
        when the policy has a window (None without one): one query per CHUNK addresses
        (a window function ranks each address's returns), then kept up to date by
        `_with_return` as the batch counts returns."""
        if not self.policy.returns_window_days:
            return None
        newest = max(self.policy.max_returns, 1)
        by_id: dict[int, list[datetime]] = {row.id: [] for row in locked.values()}
        for chunk in batched(sorted(by_id), CHUNK):
            for address_id, at in conn.execute(self._sql.recent, {"ids": chunk, "newest": newest}):
                by_id[address_id].append(utc(at))
        return {a: tuple(sorted(by_id[row.id])) for a, row in locked.items()}

    def _with_return(
        self, recent: tuple[datetime, ...], row: Any, at: datetime
    ) -> tuple[datetime, ...]:
        """`recent` once a return at `at` counted: what `_recent_by_address` would read
        back then."""
        since = utc(row.counted_since)
        if since is not None and at <= since:
            return recent
        return tuple(sorted((*recent, at)))[-max(self.policy.max_returns, 1) :]

    # --- checking -----------------------------------------------------------------------

    def details(self, addresses: Sequence[str]) -> dict[str, Details]:
        """The rows of those `addresses` that are in the store: what a verdict over
        HTTP says besides sendable (returns, last bounce, blocked at)."""
        return {
            row[0]: Details._make(map(_stored_time, row, _DETAIL_TIMES))
            for row in self._rows_of(_DETAILS, addresses)
        }

    def lookup(self, addresses: Sequence[str]) -> dict[str, tuple[bool, str, str]]:
        """(sendable, state, blocked reason) of those `addresses` that are in the store."""
        found: dict[str, tuple[bool, str, str]] = {}
        for address, state, reason in self._rows_of(_LOOKUP, addresses):
            found[address] = (state == _ACTIVE, state, reason or "")  # sendable(), inline
        return found

    def _rows_of(self, select_sql: str, addresses: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """`select_sql` (ending `WHERE address`) for `addresses`, CHUNK at a time, as plain
        tuples. The checks' hot path: the DB-API cursor directly, without SQLAlchemy's
        row objects, so a million checks cost what the database costs."""
        postgres = self.database.postgres
        with self.database.read() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for chunk in batched(addresses, CHUNK):
                    if postgres:
                        cursor.execute(select_sql + " = ANY(%s)", (chunk,))
                    else:
                        marks = ",".join("?" * len(chunk))
                        cursor.execute(f"{select_sql} IN ({marks})", chunk)
                    yield from cursor.fetchall()
            finally:
                cursor.close()

    # --- admin actions ------------------------------------------------------------------

    def administer(
        self, addresses: Sequence[str], action: Action, actor: str, *, note: str = ""
    ) -> tuple[list[str], list[str]]:
        """Apply an admin action; returns (changed addresses, unknown addresses).
        Blocking creates unknown addresses; unmark and undo leave them unknown."""
        creates = action in (Action.BLOCK, Action.FORMER_EMPLOYEE)
        changed: list[str] = []
        unknown: list[str] = []
        for chunk in batched(dict.fromkeys(addresses), CHUNK):

            def work(conn: Connection, chunk: list[str] = chunk) -> tuple[list[str], list[str]]:
                now = self.database.clock()
                if creates:
                    self.ensure(conn, chunk, now)
                locked = self.lock(conn, chunk)
                allowed = self.allowed(conn, locked)
                done = []
                for address in chunk:
                    row = locked.get(address)
                    if row is None:
                        continue
                    state = self.state(row, address in allowed)
                    new = administer(state, AdminAction(action, now))
                    extra = {"counted_since": now} if action is Action.UNMARK else {}
                    self.save(conn, row, new, now, **extra)
                    done.append(address)
                self.audit(conn, action.value, done, actor, note)
                return done, [a for a in chunk if a not in locked]

            done, missing = self.database.write(work)
            changed += done
            unknown += missing
        return changed, unknown

    def delete(self, addresses: Sequence[str], actor: str) -> tuple[list[str], list[str]]:
        """Erase addresses with their events, memberships and earlier audit entries.
        The deletion itself is audited. Returns (deleted, unknown)."""
        deleted: list[str] = []
        unknown: list[str] = []
        for chunk in batched(dict.fromkeys(addresses), CHUNK):

            def work(conn: Connection, chunk: list[str] = chunk) -> list[str]:
                locked = self.lock(conn, chunk)
                ids = [row.id for row in locked.values()]
                conn.execute(delete(event_table).where(event_table.c.address_id.in_(ids)))
                conn.execute(delete(member_table).where(member_table.c.address_id.in_(ids)))
                conn.execute(delete(audit_table).where(audit_table.c.address.in_(list(locked))))
                conn.execute(delete(address_table).where(address_table.c.id.in_(ids)))
                self.audit(conn, "delete", locked, actor)
                return list(locked)

            done = self.database.write(work)
            deleted += done
            unknown += [a for a in chunk if a not in done]
        return deleted, unknown

    def allow(self, entries: Sequence[str], actor: str, *, remove: bool = False) -> list[str]:
        """Add (or remove) allow-list entries and bring the matching addresses in line.
        Returns the entries that changed."""
        entry = allow_table.c.entry
        addresses = address_table.c

        def work(conn: Connection) -> list[str]:
            now = self.database.clock()
            present = set(conn.scalars(select(entry).where(entry.in_(entries))))
            if remove:
                changed = [e for e in entries if e in present]
                conn.execute(delete(allow_table).where(entry.in_(changed)))
            else:
                changed = [e for e in dict.fromkeys(entries) if e not in present]
                rows = [{"entry": e, "actor": actor, "created_at": now} for e in changed]
                if rows:
                    conn.execute(allow_table.insert(), rows)
            self.audit(conn, "disallow" if remove else "allow", changed, actor)
            domains = [e[1:] for e in changed if e.startswith("@")]
            matching = select(addresses.address).where(
                or_(addresses.address.in_(changed), addresses.domain.in_(domains))
            )
            locked = self.lock(conn, conn.scalars(matching))
            allowed = self.allowed(conn, locked)
            for address, row in locked.items():
                state = self.state(row, address in allowed)
                self.save(conn, row, set_allowed(state, state.allowed, now), now)
            return changed

        return self.database.write(work)

    def allow_entries(self) -> list[dict[str, Any]]:
        """The allow-list: config.toml's entries first, then the store's."""
        with self.database.read() as conn:
            query = select(allow_table).order_by(allow_table.c.entry)
            rows = [dict(r._mapping) for r in conn.execute(query)]
        config: list[dict[str, Any]] = [
            {"entry": e, "actor": "config.toml", "created_at": None}
            for e in sorted(self.config_allow)
        ]
        return config + rows


_ACTIVE = State.ACTIVE.value


def _stored_time(value: Any, is_time: bool) -> Any:
    """A time column as the DB-API gives it (SQLite: text without a zone) made aware."""
    if is_time and isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def _statements(insert: Any, postgres: bool) -> SimpleNamespace:
    """The statements of the ingest path, built once: building a statement costs more
    than SQLite takes to run it, and a prebuilt one hits SQLAlchemy's compiled cache.
    The stored keys are read from the events (SQLite) or from the key table that holds
    their unique keys across the monthly partitions (PostgreSQL: bounced.db.partitions)."""
    addresses = address_table.c
    keys = (key_table if postgres else event_table).c
    named = (
        select(address_table)
        .where(addresses.address.in_(bindparam("names", expanding=True)))
        .order_by(addresses.address)
    )
    return SimpleNamespace(
        new_address=insert(address_table).on_conflict_do_nothing(),
        new_address_rows=insert(address_table).on_conflict_do_nothing().returning(*address_table.c),
        lock=named.with_for_update(),
        lock_skip=named.with_for_update(skip_locked=True),
        allowed=select(allow_table.c.entry).where(
            allow_table.c.entry.in_(bindparam("entries", expanding=True))
        ),
        known=select(*(keys[name] for name in _EVENT_KEY), keys.counts).where(
            keys.address_id.in_(bindparam("ids", expanding=True)),
            keys.message_key.in_(bindparam("keys", expanding=True)),
        ),
        recent=_recent_returns(),
        new_events=event_table.insert(),
        save=update(address_table).where(addresses.id == bindparam("row_id")),
    )


def _recent_returns() -> Any:
    """(address id, time) of the `newest` latest counted returns of each of `ids` since
    its last unmark (`counted_since`)."""
    events, addresses = event_table.c, address_table.c
    rank = func.row_number().over(
        partition_by=events.address_id, order_by=events.received_at.desc()
    )
    ranked = (
        select(events.address_id, events.received_at, rank.label("rank"))
        .join_from(event_table, address_table, addresses.id == events.address_id)
        .where(
            events.address_id.in_(bindparam("ids", expanding=True)),
            events.counts,
            or_(addresses.counted_since.is_(None), events.received_at > addresses.counted_since),
        )
        .subquery()
    )
    return select(ranked.c.address_id, ranked.c.received_at).where(
        ranked.c.rank <= bindparam("newest")
    )


def _saved(row: Any, state: AddressState, now: datetime, **extra: Any) -> dict[str, Any]:
    """The parameters of `save` that store `state` on `row`."""
    values = {name: getattr(state, name) for name in _STATE_COLUMNS}
    values["auto_reason"] = state.auto_reason and state.auto_reason.value
    values |= {"state": state.state.value, "updated_at": now, **extra}
    values["blocked_reason"] = state.blocked_reason and state.blocked_reason.value
    return {"row_id": row.id, **values}


def _event_values(item: Incoming, address_id: int) -> dict[str, Any]:
    """The columns of the event recording `item`, but `counts` (the policy's to say)."""
    b = item.bounce
    values = {name: getattr(b, name) or "" for name in TEXT_FACTS}
    return values | {
        "address_id": address_id,
        "message_key": item.message_key,
        "notice": item.notice,
        "kind": b.kind.value,
        "bounce_class": b.bounce_class.value if b.bounce_class else "",
        "reason": b.reason.value if b.reason else "",
        "domain": domain_of(item.address),
        "source": item.source,
        "received_at": item.received_at,
    }


def _new_address(address: str, now: datetime) -> dict[str, Any]:
    return {
        "address": address,
        "domain": domain_of(address),
        "state": State.ACTIVE.value,
        "manual": False,
        "former_employee": False,
        "returns": 0,
        "last_reason": "",
        "last_status": "",
        "last_class": "",
        "created_at": now,
        "updated_at": now,
    }
