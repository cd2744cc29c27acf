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
from sqlalchemy.exc import IntegrityError

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
#: What recording an address's bounces reads of its row: a writer that changes any
#: of them changes how the next bounce counts.
_COUNTING_COLUMNS = (*_STATE_COLUMNS, "counted_since")
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


#: What a decision about an address rests on: its row's counting columns and its
#: row's id (None for a new address), and whether it is on the allow-list.
_Basis = tuple[Any, ...]


def _basis(row: Any, allowed: bool) -> _Basis:
    if row is None:
        return (None, *_NEW_FACTS, allowed)
    return (row.id, *(getattr(row, name) for name in _COUNTING_COLUMNS), allowed)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A batch's rows decided: what recording each did (by its index in the batch), the
    events to insert (by address, without the address row's id), the states that
    changed, and per address what the decisions rest on (`_basis`)."""

    recorded: dict[int, Recorded]
    events: list[tuple[str, dict[str, Any]]]
    changed: dict[str, AddressState]
    basis: dict[str, _Basis]
    #: The newest event stored when the plan was made.
    last_event: int = 0

    @classmethod
    def empty(cls) -> _Plan:
        return cls({}, [], {}, {})

    def holds(self, address: str, row: Any, allowed: set[str]) -> bool:
        """The decisions about `address` still stand with its locked `row`: the row is
        as it was read, or, for an address that was new, one nobody has counted on."""
        seen = self.basis.get(address)
        if seen is None:
            return False
        now = _basis(row, address in allowed)
        return seen == now or (seen[0] is None and seen[1:] == now[1:])

    def only(self, addresses: set[str]) -> _Plan:
        """The decisions about `addresses`."""
        return _Plan(
            {i: r for i, r in self.recorded.items() if r.address in addresses},
            [(a, values) for a, values in self.events if a in addresses],
            {a: s for a, s in self.changed.items() if a in addresses},
            {a: b for a, b in self.basis.items() if a in addresses},
            self.last_event,
        )

    def __or__(self, other: _Plan) -> _Plan:
        """Both plans' decisions (about different addresses)."""
        return _Plan(
            self.recorded | other.recorded,
            self.events + other.events,
            self.changed | other.changed,
            self.basis | other.basis,
            self.last_event,
        )


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
        self._sql = _statements()

    # --- address rows, for this and the sibling repositories ----------------------------

    def ensure(self, conn: Connection, addresses: Sequence[str], now: datetime) -> None:
        """Create missing address rows (sorted, so concurrent writers lock in one order)."""
        rows = [_new_address(a, now) for a in sorted(set(addresses))]
        for chunk in batched(rows, CHUNK):
            self.database.insert_many(conn, address_table, chunk, skip_existing=True)

    def take(
        self, conn: Connection, addresses: Iterable[str], now: datetime, *, skip: bool = False
    ) -> dict[str, Any]:
        """The address rows, locked for this transaction, created when missing: `lock`
        first (at a steady state every address exists: one round trip), then the
        missing rows inserted (a row this transaction inserts is locked by it; one that
        another writer inserted meanwhile is left to it) and locked. `skip`: leave out
        the rows another writer holds (PostgreSQL's SKIP LOCKED) instead of waiting."""
        wanted = sorted(set(addresses))
        found = self.lock(conn, wanted, skip=skip)
        missing = [a for a in wanted if a not in found]
        if missing:
            self.ensure(conn, missing, now)
            found |= self.lock(conn, missing, skip=skip)
        return found

    def lock(
        self, conn: Connection, addresses: Iterable[str], *, skip: bool = False
    ) -> dict[str, Any]:
        """The address rows, locked for this transaction, by address (`skip`: see take)."""
        found: dict[str, Any] = {}
        for chunk in batched(sorted(set(addresses)), CHUNK):
            rows = self.database.rows_in(
                conn, address_table, "address", chunk, lock=True, skip_locked=skip
            )
            found.update((row.address, row) for row in rows)
        return found

    def allowed(self, conn: Connection, addresses: Iterable[str]) -> set[str]:
        """Those of `addresses` on the allow-list (config.toml or the store), in one query."""
        wanted = {a: (a, "@" + domain_of(a)) for a in addresses}
        entries = {e for pair in wanted.values() for e in pair}
        stored = self.database.rows_in(conn, allow_table, "entry", sorted(entries))
        listed = self.config_allow | {row.entry for row in stored}
        return {a for a, pair in wanted.items() if not listed.isdisjoint(pair)}

    @staticmethod
    def state(row: Any, allowed: bool) -> AddressState:
        """The policy's view of an address row (None: a new address)."""
        if row is None:
            return AddressState(allowed=allowed)
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

        Everything the policy needs (address rows, the stored events the rows may repeat,
        the allow-list) is read and every row decided first, in a read transaction that
        locks nothing (`_decide`). The write transaction then locks the address rows and
        keeps a decision where the address row is still as it was read, deciding the
        others' rows again: whatever changes an address's count changes its row, and the
        unique keys refuse an event another writer stored meanwhile (the batch is then
        decided again under the locks). So a writer holds the lock for its writes, not
        for its work: on SQLite, whose writers take turns, that is what lets several
        processes ingest side by side.

        On PostgreSQL the missing address rows are created first in a short transaction
        of their own, and the batch then takes only the rows no other writer holds (SKIP
        LOCKED): the rows of the addresses it skipped follow in a second transaction that
        waits for them. So concurrent writers wait only where they share an address."""
        if not rows:
            return []
        pending = list(enumerate(rows))
        skip = self.database.postgres
        if skip:
            self.database.write(
                lambda conn: self.ensure(conn, [r.address for r in rows], self.database.clock()),
                durable=False,
            )
        with self.database.read() as conn:
            last = conn.execute(self._sql.last_event).scalar() or 0
            ahead = self._decide(conn, pending, self._rows(conn, [r.address for r in rows]), last)
        done: dict[int, Recorded] = {}
        try:
            self._write(pending, skip, ahead, done)
        except IntegrityError:
            # From where it stopped: a first SKIP LOCKED round may have committed.
            rest = [(i, r) for i, r in pending if i not in done]
            self._write(rest, skip=False, ahead=None, done=done)
        return [done[i] for i in range(len(rows))]

    def _write(
        self,
        pending: list[tuple[int, Incoming]],
        skip: bool,
        ahead: _Plan | None,
        done: dict[int, Recorded],
    ) -> None:
        """Write the decisions, in a transaction per round of SKIP LOCKED (`record`),
        adding what each committed round recorded to `done`."""
        while pending:

            def work(
                conn: Connection, todo: list[tuple[int, Incoming]] = pending, skip: bool = skip
            ) -> tuple[dict[int, Recorded], list[tuple[int, Incoming]]]:
                return self._record_locked(conn, todo, skip, ahead)

            recorded, pending = self.database.write(work)
            done |= recorded
            skip = False

    def _record_locked(
        self,
        conn: Connection,
        rows: list[tuple[int, Incoming]],
        skip: bool,
        ahead: _Plan | None,
    ) -> tuple[dict[int, Recorded], list[tuple[int, Incoming]]]:
        """Record the `rows` (by their index in the batch) whose address rows this
        transaction locks; returns what was recorded and the rows left for later.

        The decisions made `ahead` stand for the addresses whose row and allow-list
        entry are as they were read; the other addresses' rows are decided here, under
        the locks. The new events and the changed states are written in one statement
        each (a round trip per row was most of the cost on PostgreSQL). The events are
        inserted without ON CONFLICT: under the locks a conflict is another writer's
        event stored after `ahead` was read, or a bug, refused loudly."""
        now = self.database.clock()
        locked = self.take(conn, (r.address for _, r in rows), now, skip=skip)
        later = [(i, r) for i, r in rows if r.address not in locked]
        rows = [(i, r) for i, r in rows if r.address in locked]
        allowed = self.allowed(conn, locked)
        plan = _Plan.empty()
        if ahead is not None:
            since = self._with_events_since(conn, ahead.last_event, locked)
            holding = {a for a, row in locked.items() if ahead.holds(a, row, allowed)}
            plan = ahead.only(holding - since)
        redo = [(i, r) for i, r in rows if r.address not in plan.basis]
        if redo:
            plan = plan | self._decide(conn, redo, locked, allowed=allowed)
        if plan.events:
            events = [values | {"address_id": locked[a].id} for a, values in plan.events]
            self.database.insert_many(conn, event_table, events)
        if plan.changed:
            saves = [_saved(locked[a], s, now) for a, s in plan.changed.items()]
            self.database.update_many(conn, address_table, saves, key="row_id")
        return {i: plan.recorded[i] for i, _ in rows}, later

    def _with_events_since(self, conn: Connection, last: int, locked: dict[str, Any]) -> set[str]:
        """Those of the `locked` addresses with events stored after event `last`: another
        writer's event may make one of theirs a duplicate. (Not a proof of the contrary:
        ids are handed out before commit, so a late commit can slip under `last`; the
        unique keys catch that.)"""
        address_of = {row.id: a for a, row in locked.items()}
        found: set[str] = set()
        for ids in batched(sorted(address_of), CHUNK):
            stored = conn.scalars(self._sql.since, {"ids": ids, "last": last})
            found.update(address_of[i] for i in stored)
        return found

    def _rows(self, conn: Connection, addresses: Iterable[str]) -> dict[str, Any]:
        """The rows of those `addresses` that exist, by address, locking nothing."""
        found: dict[str, Any] = {}
        for chunk in batched(sorted(set(addresses)), CHUNK):
            rows = self.database.rows_in(conn, address_table, "address", chunk)
            found.update((row.address, row) for row in rows)
        return found

    def _decide(
        self,
        conn: Connection,
        rows: Sequence[tuple[int, Incoming]],
        found: dict[str, Any],
        last_event: int = 0,
        *,
        allowed: set[str] | None = None,
    ) -> _Plan:
        """Decide `rows` (by their index in the batch) against the address rows `found`
        (an address without one is new), the allow-list (read when `allowed` is None)
        and what the events table holds for them: read once, and each row decided in
        order against that and the rows before it."""
        rows_of = {a: found.get(a) for a in dict.fromkeys(r.address for _, r in rows)}
        if allowed is None:
            allowed = self.allowed(conn, rows_of)
        states = {a: self.state(row, a in allowed) for a, row in rows_of.items()}
        recent = self._recent_by_address(conn, rows_of)
        known, counted = self._known(conn, rows_of, {(r.address, r.message_key) for _, r in rows})
        basis = {a: _basis(row, a in allowed) for a, row in rows_of.items()}
        plan = _Plan({}, [], {}, basis, last_event)
        for index, item in rows:
            values = _event_values(item)
            key = (item.address, *(values[name] for name in _EVENT_KEY[1:]))
            if key in known:
                plan.recorded[index] = Recorded(item.address, None)
                continue
            known.add(key)
            state = states[item.address]
            if recent is not None:
                state = replace(state, recent_returns=recent[item.address])
            pair = (item.address, item.message_key)
            event = Event.of(item.bounce, item.received_at, repeat=pair in counted)
            decision = decide(state, event, self.policy)
            if decision.counts:
                counted.add(pair)
                if recent is not None:
                    recent[item.address] = self._with_return(
                        recent[item.address], rows_of[item.address], item.received_at
                    )
            plan.events.append((item.address, values | {"counts": decision.counts}))
            if decision.state != state:
                states[item.address] = plan.changed[item.address] = decision.state
            plan.recorded[index] = Recorded(item.address, decision)
        return plan

    def _known(
        self, conn: Connection, rows_of: dict[str, Any], pairs: Iterable[tuple[str, str]]
    ) -> tuple[set[tuple[Any, ...]], set[tuple[str, str]]]:
        """The keys (`_EVENT_KEY`, by address) of the stored events of those (address,
        message) `pairs` whose address has a row, and the pairs among them that counted:
        a query per CHUNK pairs, one index seek each (`Database.pairs_in`). The stored
        keys are read from the events (SQLite) or from the key table that holds their
        unique keys across the monthly partitions (PostgreSQL: bounced.db.partitions)."""
        keys: set[tuple[Any, ...]] = set()
        counted: set[tuple[str, str]] = set()
        id_of = {a: row.id for a, row in rows_of.items() if row is not None}
        address_of = {i: a for a, i in id_of.items()}
        wanted = sorted((id_of[a], message) for a, message in pairs if a in id_of)
        table = key_table if self.database.postgres else event_table
        for chunk in batched(wanted, CHUNK):
            for *key, counts in self.database.pairs_in(
                conn, table, ("address_id", "message_key"), chunk, (*_EVENT_KEY, "counts")
            ):
                address = address_of[key[0]]
                keys.add((address, *key[1:]))
                if counts:
                    counted.add((address, key[1]))
        return keys, counted

    def _recent_by_address(
        self, conn: Connection, rows_of: dict[str, Any]
    ) -> dict[str, tuple[datetime, ...]] | None:
        """Per address, the times of its newest counted returns since its last unmark,
        when the policy has a window (None without one): one query per CHUNK addresses
        (a window function ranks each address's returns), then kept up to date by
        `_with_return` as the batch counts returns. A new address (no row) has none."""
        if not self.policy.returns_window_days:
            return None
        newest = max(self.policy.max_returns, 1)
        by_id: dict[int, list[datetime]] = {
            row.id: [] for row in rows_of.values() if row is not None
        }
        for chunk in batched(sorted(by_id), CHUNK):
            for address_id, at in conn.execute(self._sql.recent, {"ids": chunk, "newest": newest}):
                by_id[address_id].append(utc(at))
        return {
            a: () if row is None else tuple(sorted(by_id[row.id])) for a, row in rows_of.items()
        }

    def _with_return(
        self, recent: tuple[datetime, ...], row: Any, at: datetime
    ) -> tuple[datetime, ...]:
        """`recent` once a return at `at` counted: what `_recent_by_address` would read
        back then."""
        since = None if row is None else utc(row.counted_since)
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
            cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for chunk in batched(addresses, CHUNK):
                    if postgres:
                        # One address: prepared from its fifth run (psycopg's default),
                        # planning is most of its cost. A chunk: never, as in
                        # `Database._cursor`: a generic plan made on a young table is a
                        # sequential scan, which a thousand addresses make quadratic.
                        prepare = None if len(chunk) == 1 else False
                        cursor.execute(select_sql + " = ANY(%s)", (chunk,), prepare=prepare)
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


def _statements() -> SimpleNamespace:
    """The statements of the ingest path, built once: building a statement costs more
    than SQLite takes to run it, and a prebuilt one hits SQLAlchemy's compiled cache."""
    addresses, events = address_table.c, event_table.c
    return SimpleNamespace(
        recent=_recent_returns(),
        last_event=select(func.max(events.id)),
        since=select(events.address_id).where(
            events.id > bindparam("last"), events.address_id.in_(bindparam("ids", expanding=True))
        ),
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


def _event_values(item: Incoming) -> dict[str, Any]:
    """The columns of the event recording `item`, but its address row's id and `counts`
    (the policy's to say)."""
    b = item.bounce
    values = {name: getattr(b, name) or "" for name in TEXT_FACTS}
    return values | {
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


#: The counting columns of an address row just created.
_NEW_FACTS = tuple(_new_address("", datetime.min).get(name) for name in _COUNTING_COLUMNS)
