"""The suppression store: the only module that talks SQL.

It applies what `bounced.policy` decides, atomically, on SQLite or PostgreSQL.
Exact counting with several processes comes from the database, never from
in-process locks: every unit of work is one transaction that first takes the
rows it changes (SQLite: `BEGIN IMMEDIATE`, one writer at a time; PostgreSQL:
`SELECT … FOR UPDATE` on the address rows, in sorted order so two writers
never deadlock), and the unique keys in `bounced.db.tables` refuse a bounce
recorded twice even if everything else went wrong. A transaction that loses a
deadlock or a lock race is retried whole.

Addresses reaching this module are already normalised (`bounced.addresses`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby, islice
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.sql.functions import aggregate_strings

from bounced.addresses import domain_of, normalize_allow_entry
from bounced.config import Settings
from bounced.db.tables import Address, Allow, Audit, Member, Selection
from bounced.db.tables import Event as EventRow
from bounced.dsn import TEXT_FACTS, Bounce, BounceClass, Kind, Reason
from bounced.errors import BouncedError, DatabaseUnavailable, UnknownSelection
from bounced.policy import (
    EXHAUSTED,
    Action,
    AddressState,
    AdminAction,
    BlockReason,
    Decision,
    Event,
    State,
    administer,
    decide,
    replay,
    set_allowed,
)

__all__ = [
    "LIST_COLUMNS",
    "NO_FILTERS",
    "SCHEMA_REVISION",
    "Change",
    "Details",
    "Filters",
    "Incoming",
    "Recorded",
    "Store",
    "sendable",
]

A = Address.__table__  # type: ignore[attr-defined]
E = EventRow.__table__  # type: ignore[attr-defined]
S = Selection.__table__  # type: ignore[attr-defined]
M = Member.__table__  # type: ignore[attr-defined]
W = Allow.__table__  # type: ignore[attr-defined]
L = Audit.__table__  # type: ignore[attr-defined]

#: Columns of `list` and `export`, in order.
LIST_COLUMNS = (
    "address",
    "state",
    "blocked_reason",
    "returns",
    "last_reason",
    "last_status",
    "first_return_at",
    "last_return_at",
    "blocked_at",
    "selections",
)


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
#: Rows per IN (...) query and per transaction of a bulk admin action.
CHUNK = 1000
_MIGRATIONS = Path(__file__).parent / "migrations"
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available
_ATTEMPTS = 8
#: The newest migration: revisions are named by their file's number prefix
#: (0001_initial.py is "0001"), so a directory listing says it without Alembic
#: (a test holds it equal to Alembic's head).
SCHEMA_REVISION = max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9]*.py"))
_LOCK_KEY = 0x626F756E636564  # "bounced": serialises concurrent migrations on PostgreSQL
T = TypeVar("T")

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


@dataclass(frozen=True, slots=True)
class Incoming:
    """One bounce row to record, with its normalised address, the key of the original
    message (what returns are counted by) and the identity of the notice that said it
    (what duplicates are recognised by; bounced.suppressions.notice_id)."""

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


@dataclass(frozen=True, slots=True)
class Change:
    """An address whose state differs under the current policy (`policy apply`)."""

    address: str
    before: AddressState
    after: AddressState


_ACTIVE = State.ACTIVE.value


def sendable(state: str) -> bool:
    """May an address in this state be mailed? (`lookup` says it inline: its hot loop.)"""
    return state == _ACTIVE


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (itertools.batched arrived in Python 3.12)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _stored_time(value: Any, is_time: bool) -> Any:
    """A time column as the DB-API gives it (SQLite: text without a zone) made aware."""
    if is_time and isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def _db_error(exc: BaseException, url: str) -> DatabaseUnavailable:
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return DatabaseUnavailable(f"cannot use database {url}: {detail}")


class Store:
    """Tables, queries and migrations behind one connection pool."""

    def __init__(
        self, engine: Engine, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = settings.policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.url = engine.url.render_as_string(hide_password=True)
        fold = settings.policy.case_sensitive_local_part
        self._config_allow = frozenset(
            normalize_allow_entry(e, case_sensitive_local_part=fold) for e in settings.policy.allow
        )
        #: The dialect's INSERT (with on_conflict_do_nothing), for the sibling stores.
        self.insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._sql = _statements(self.insert)

    # --- opening, schema ---------------------------------------------------------------

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Callable[[], datetime] | None = None, migrate=True
    ) -> Store:
        """Connect; on an empty database create the schema; refuse an outdated one."""
        engine = _engine(settings)
        store = cls(engine, settings, clock)
        if migrate:
            try:
                store._ensure_schema()
            except BaseException:
                engine.dispose()
                raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _ensure_schema(self) -> None:
        with self.read() as conn:
            tables = inspect(conn)
            current = None
            if tables.has_table("alembic_version"):
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            empty = not tables.has_table("address")
        if current is None and empty:
            self.upgrade()
        elif current != SCHEMA_REVISION:
            raise BouncedError(
                f"the database schema is at revision {current or 'none'}, "
                f"this bounced needs {SCHEMA_REVISION}: run `bounced db upgrade`"
            )

    def upgrade(self) -> str:
        """Bring the schema to the newest revision (a no-op when it is there)."""

        from alembic import command  # only here: opening a store never needs Alembic

        def work(conn: Connection) -> str:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

        return self.write(work)

    # --- transactions ------------------------------------------------------------------
    # Public for the stores that share this database (sending log, inbox): they run
    # their statements in the same transactions, with the same error handling.

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction; an unreachable database is a DatabaseError."""
        try:
            with self._connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            if not _is_connection_error(exc):
                raise
            raise _db_error(exc, self.url) from None

    def _connect(self) -> Connection:
        """A pooled connection; any failure to get one (server down, wrong URL, a file
        that is not a database) is the database being unavailable, said in one line."""
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise _db_error(exc, self.url) from None

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, retried whole when it lost a lock race."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._connect() as conn:
                    conn = conn.execution_options(bounced_write=True)
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if _retryable(exc) and attempt < _ATTEMPTS - 1:
                    time.sleep(0.01 * 2**attempt)
                    continue
                if _is_connection_error(exc):
                    raise _db_error(exc, self.url) from None
                raise
        raise AssertionError("unreachable")

    # --- addresses and their state ------------------------------------------------------

    def _ensure(self, conn: Connection, addresses: Sequence[str], now: datetime) -> None:
        """Create missing address rows (sorted, so concurrent writers lock in one order)."""
        rows = [_new_address(a, now) for a in sorted(set(addresses))]
        for chunk in batched(rows, CHUNK):
            conn.execute(self._sql.new_address, chunk)

    def _lock(self, conn: Connection, addresses: Iterable[str]) -> dict[str, Any]:
        """The address rows, locked for this transaction, by address."""
        found: dict[str, Any] = {}
        for chunk in batched(sorted(set(addresses)), CHUNK):
            for row in conn.execute(self._sql.lock, {"names": chunk}):
                found[row.address] = row
        return found

    def _allowed(self, conn: Connection, addresses: Iterable[str]) -> set[str]:
        """Those of `addresses` on the allow-list (config.toml or the store), in one query."""
        wanted = {a: (a, "@" + domain_of(a)) for a in addresses}
        entries = {e for pair in wanted.values() for e in pair}
        listed = self._config_allow | set(conn.scalars(self._sql.allowed, {"entries": entries}))
        return {a for a, pair in wanted.items() if not listed.isdisjoint(pair)}

    def _state(self, conn: Connection, row: Any, allowed: bool | None = None) -> AddressState:
        values = {name: getattr(row, name) for name in _STATE_COLUMNS}
        for name in ("first_return_at", "last_return_at", "blocked_at"):
            values[name] = _utc(values[name])
        values["auto_reason"] = BlockReason(row.auto_reason) if row.auto_reason else None
        if allowed is None:
            allowed = bool(self._allowed(conn, [row.address]))
        return AddressState(**values, allowed=allowed)

    def _recent(self, conn: Connection, row: Any) -> tuple[datetime, ...]:
        """Times of the newest counted returns since the last unmark (for the window)."""
        query = select(E.c.received_at).where(E.c.address_id == row.id, E.c.counts)
        if row.counted_since is not None:
            query = query.where(E.c.received_at > row.counted_since)
        query = query.order_by(E.c.received_at.desc()).limit(max(self.policy.max_returns, 1))
        return tuple(sorted(_utc(t) for t in conn.scalars(query)))

    def _save(
        self, conn: Connection, row: Any, state: AddressState, now: datetime, **extra: Any
    ) -> None:
        conn.execute(self._sql.save, self._saved(row, state, now, **extra))

    @staticmethod
    def _saved(row: Any, state: AddressState, now: datetime, **extra: Any) -> dict[str, Any]:
        """The parameters of `save` that store `state` on `row`."""
        values = {name: getattr(state, name) for name in _STATE_COLUMNS}
        values["auto_reason"] = state.auto_reason and state.auto_reason.value
        values |= {"state": state.state.value, "updated_at": now, **extra}
        values["blocked_reason"] = state.blocked_reason and state.blocked_reason.value
        return {"row_id": row.id, **values}

    def audit(
        self, conn: Connection, action: str, addresses: Iterable[str], actor: str, detail=""
    ) -> None:
        """Log an admin action on `addresses`, inside the caller's write transaction."""
        now = self.clock()
        rows = [
            {"at": now, "actor": actor, "action": action, "address": a, "detail": detail}
            for a in addresses
        ]
        for chunk in batched(rows, CHUNK):
            conn.execute(L.insert(), list(chunk))

    # --- recording bounces --------------------------------------------------------------

    def record(self, rows: Sequence[Incoming]) -> list[Recorded]:
        """Record bounce rows (one message or a batch of messages) in one transaction.

        The address rows are locked first, so no other writer adds events for them
        before this transaction ends: what the events table holds for the batch is read
        once, each row is decided in order against that and the rows before it, and the
        new events and the changed states are written in one statement each (a round
        trip per row was most of the cost on PostgreSQL). The events are inserted
        without ON CONFLICT: under the locks a conflict is a bug, refused loudly."""
        if not rows:
            return []

        def work(conn: Connection) -> list[Recorded]:
            now = self.clock()
            self._ensure(conn, [r.address for r in rows], now)
            locked = self._lock(conn, (r.address for r in rows))
            allowed = self._allowed(conn, locked)
            states = {a: self._state(conn, row, a in allowed) for a, row in locked.items()}
            recent = self._recent_by_address(conn, locked)
            values = [_event_values(r, locked[r.address].id) for r in rows]
            known, counted = self._known(conn, values)
            out, new, changed = [], [], {}
            for item, event_values in zip(rows, values, strict=True):
                key = tuple(event_values[name] for name in _EVENT_KEY)
                if key in known:
                    out.append(Recorded(item.address, None))
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
                out.append(Recorded(item.address, decision))
            if new:
                conn.execute(self._sql.new_events, new)
            if changed:
                saves = [self._saved(locked[a], s, now) for a, s in changed.items()]
                conn.execute(self._sql.save, saves)
            return out

        return self.write(work)

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
        """`_recent` per address when the policy has a window (None without one): read
        once, then kept up to date by `_with_return` as the batch counts returns."""
        if not self.policy.returns_window_days:
            return None
        return {a: self._recent(conn, row) for a, row in locked.items()}

    def _with_return(
        self, recent: tuple[datetime, ...], row: Any, at: datetime
    ) -> tuple[datetime, ...]:
        """`recent` once a return at `at` counted: what `_recent` would read back then."""
        since = _utc(row.counted_since)
        if since is not None and at <= since:
            return recent
        return tuple(sorted((*recent, at)))[-max(self.policy.max_returns, 1) :]

    # --- checking -----------------------------------------------------------------------

    def lookup(self, addresses: Sequence[str]) -> dict[str, tuple[bool, str, str]]:
        """(sendable, state, blocked reason) of those `addresses` that are in the store."""
        found: dict[str, tuple[bool, str, str]] = {}
        for address, state, reason in self._rows_of(_LOOKUP, addresses):
            found[address] = (state == _ACTIVE, state, reason or "")  # sendable(), inline
        return found

    def details(self, addresses: Sequence[str]) -> dict[str, Details]:
        """The rows of those `addresses` that are in the store: what a verdict over
        HTTP says besides sendable (returns, last bounce, blocked at)."""
        return {
            row[0]: Details._make(map(_stored_time, row, _DETAIL_TIMES))
            for row in self._rows_of(_DETAILS, addresses)
        }

    def _rows_of(self, select_sql: str, addresses: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """`select_sql` (ending `WHERE address`) for `addresses`, CHUNK at a time, as plain
        tuples. The checks' hot path: the DB-API cursor directly, without SQLAlchemy's
        row objects, so a million checks cost what the database costs."""
        postgres = self.engine.dialect.name == "postgresql"
        with self.read() as conn:
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

            def work(conn: Connection, chunk=chunk) -> tuple[list[str], list[str]]:
                now = self.clock()
                if creates:
                    self._ensure(conn, chunk, now)
                locked = self._lock(conn, chunk)
                allowed = self._allowed(conn, locked)
                done = []
                for address in chunk:
                    row = locked.get(address)
                    if row is None:
                        continue
                    state = self._state(conn, row, address in allowed)
                    new = administer(state, AdminAction(action, now))
                    extra = {"counted_since": now} if action is Action.UNMARK else {}
                    self._save(conn, row, new, now, **extra)
                    done.append(address)
                self.audit(conn, action.value, done, actor, note)
                return done, [a for a in chunk if a not in locked]

            done, missing = self.write(work)
            changed += done
            unknown += missing
        return changed, unknown

    def delete(self, addresses: Sequence[str], actor: str) -> tuple[list[str], list[str]]:
        """Erase addresses with their events, memberships and earlier audit entries.
        The deletion itself is audited. Returns (deleted, unknown)."""
        deleted: list[str] = []
        unknown: list[str] = []
        for chunk in batched(dict.fromkeys(addresses), CHUNK):

            def work(conn: Connection, chunk=chunk) -> list[str]:
                locked = self._lock(conn, chunk)
                ids = [row.id for row in locked.values()]
                conn.execute(delete(E).where(E.c.address_id.in_(ids)))
                conn.execute(delete(M).where(M.c.address_id.in_(ids)))
                conn.execute(delete(L).where(L.c.address.in_(list(locked))))
                conn.execute(delete(A).where(A.c.id.in_(ids)))
                self.audit(conn, "delete", locked, actor)
                return list(locked)

            done = self.write(work)
            deleted += done
            unknown += [a for a in chunk if a not in done]
        return deleted, unknown

    def allow(self, entries: Sequence[str], actor: str, *, remove: bool = False) -> list[str]:
        """Add (or remove) allow-list entries and bring the matching addresses in line.
        Returns the entries that changed."""

        def work(conn: Connection) -> list[str]:
            now = self.clock()
            present = set(conn.scalars(select(W.c.entry).where(W.c.entry.in_(entries))))
            if remove:
                changed = [e for e in entries if e in present]
                conn.execute(delete(W).where(W.c.entry.in_(changed)))
            else:
                changed = [e for e in dict.fromkeys(entries) if e not in present]
                rows = [{"entry": e, "actor": actor, "created_at": now} for e in changed]
                if rows:
                    conn.execute(W.insert(), rows)
            self.audit(conn, "disallow" if remove else "allow", changed, actor)
            domains = [e[1:] for e in changed if e.startswith("@")]
            matching = select(A.c.address).where(
                or_(A.c.address.in_(changed), A.c.domain.in_(domains))
            )
            locked = self._lock(conn, conn.scalars(matching))
            allowed = self._allowed(conn, locked)
            for address, row in locked.items():
                state = self._state(conn, row, address in allowed)
                self._save(conn, row, set_allowed(state, state.allowed, now), now)
            return changed

        return self.write(work)

    def allow_entries(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(W).order_by(W.c.entry))]
        config = [
            {"entry": e, "actor": "config.toml", "created_at": None} for e in self._config_allow
        ]
        return sorted(config, key=lambda r: r["entry"]) + rows

    # --- selections ---------------------------------------------------------------------

    def _selection_id(self, conn: Connection, name: str, *, create: bool) -> int:
        if create:
            stmt = self.insert(S).values(name=name, created_at=self.clock())
            conn.execute(stmt.on_conflict_do_nothing())
        found = conn.scalar(select(S.c.id).where(S.c.name == name))
        if found is None:
            raise UnknownSelection(name)
        return found

    def select_add(self, name: str, addresses: Sequence[str], actor: str) -> int:
        """Add addresses to a selection (created if new); unknown addresses are created."""
        added = 0
        for chunk in batched(dict.fromkeys(addresses), CHUNK):

            def work(conn: Connection, chunk=chunk) -> int:
                sid = self._selection_id(conn, name, create=True)
                self._ensure(conn, chunk, self.clock())
                ids = conn.scalars(select(A.c.id).where(A.c.address.in_(chunk)))
                rows = [{"selection_id": sid, "address_id": i} for i in ids]
                stmt = self.insert(M).values(rows).on_conflict_do_nothing()
                added_rows = conn.execute(stmt.returning(M.c.address_id)).all()
                self.audit(conn, "selection_add", chunk, actor, name)
                return len(added_rows)

            added += self.write(work)
        return added

    def select_where(self, name: str, filters: Filters, actor: str) -> int:
        """Add every address matching `filters` to a selection, in one statement."""

        def work(conn: Connection) -> int:
            sid = self._selection_id(conn, name, create=True)
            matching = _filtered(select(literal(sid), A.c.id), filters).where(
                ~A.c.id.in_(select(M.c.address_id).where(M.c.selection_id == sid))
            )
            stmt = M.insert().from_select(["selection_id", "address_id"], matching)
            # Counted from RETURNING: SQLAlchemy reports no rowcount for INSERT on psycopg.
            added = len(conn.execute(stmt.returning(M.c.address_id)).all())
            self.audit(conn, "selection_add", [""], actor, f"{name}: {_describe(filters)}")
            return added

        return self.write(work)

    def select_remove(self, name: str, addresses: Sequence[str], actor: str) -> int:
        def work(conn: Connection) -> int:
            sid = self._selection_id(conn, name, create=False)
            removed = 0
            for chunk in batched(dict.fromkeys(addresses), CHUNK):
                ids = select(A.c.id).where(A.c.address.in_(chunk))
                stmt = delete(M).where(M.c.selection_id == sid, M.c.address_id.in_(ids))
                removed += conn.execute(stmt).rowcount
                self.audit(conn, "selection_remove", chunk, actor, name)
            return removed

        return self.write(work)

    def selections(self) -> list[dict[str, Any]]:
        count = func.count(M.c.address_id)
        query = (
            select(S.c.name, S.c.created_at, count.label("members"))
            .select_from(S.outerjoin(M, M.c.selection_id == S.c.id))
            .group_by(S.c.id, S.c.name, S.c.created_at)
            .order_by(S.c.name)
        )
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def require_selection(self, name: str) -> None:
        with self.read() as conn:
            self._selection_id(conn, name, create=False)

    # --- reading ------------------------------------------------------------------------

    def rows(
        self, filters: Filters = NO_FILTERS, *, after: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Addresses matching `filters`, streamed in address order (never all in memory);
        a page of them: the first `limit` after the address `after` (keyset pagination,
        stable while rows are added)."""
        if filters.selection:
            self.require_selection(filters.selection)
        names = (
            select(aggregate_strings(S.c.name, ","))
            .select_from(M.join(S, S.c.id == M.c.selection_id))
            .where(M.c.address_id == A.c.id)
            .scalar_subquery()
        )
        columns = [A.c[c] for c in LIST_COLUMNS[:-1]]
        query = _filtered(select(*columns, names.label("selections")), filters)
        if after is not None:
            query = query.where(A.c.address > after)
        if limit is not None:
            query = query.limit(limit)
        with self.read() as conn:
            result = conn.execution_options(yield_per=CHUNK).execute(query.order_by(A.c.address))
            try:
                for row in result:
                    yield dict(row._mapping)
            finally:  # a reader that stops early must not leave a server-side cursor open
                result.close()

    def show(self, address: str) -> dict[str, Any] | None:
        """The address row, its events and its admin actions; None when unknown."""
        with self.read() as conn:
            row = conn.execute(select(A).where(A.c.address == address)).first()
            if row is None:
                return None
            events = conn.execute(
                select(E).where(E.c.address_id == row.id).order_by(E.c.received_at, E.c.id)
            )
            audit = conn.execute(select(L).where(L.c.address == address).order_by(L.c.at, L.c.id))
            sel = conn.scalars(
                select(S.c.name).join(M, M.c.selection_id == S.c.id).where(M.c.address_id == row.id)
            )
            return {
                "address": dict(row._mapping),
                "allowed": bool(self._allowed(conn, [address])),
                "events": [dict(e._mapping) for e in events],
                "audit": [dict(a._mapping) for a in audit],
                "selections": sorted(sel),
            }

    def stats(self, days: int = 30) -> dict[str, list[tuple[str, int]]]:
        """Counts by state, blocked reason and domain, and returns per day."""
        since = self.clock() - timedelta(days=days)
        day = func.date(E.c.received_at)
        blocked = A.c.state != State.ACTIVE.value
        queries = {
            "state": select(A.c.state, func.count()).group_by(A.c.state),
            "reason": select(A.c.blocked_reason, func.count())
            .where(blocked)
            .group_by(A.c.blocked_reason),
            "domain": select(A.c.domain, func.count())
            .where(blocked)
            .group_by(A.c.domain)
            .order_by(func.count().desc(), A.c.domain)
            .limit(20),
            "returns_per_day": select(day, func.count())
            .where(E.c.counts, E.c.received_at >= since)
            .group_by(day)
            .order_by(day),
        }
        with self.read() as conn:
            out = {k: [(str(a), int(n)) for a, n in conn.execute(q)] for k, q in queries.items()}
        for key in ("state", "reason"):
            out[key].sort(key=lambda kv: (-kv[1], kv[0]))
        return out

    def deliverability(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Sender-side failures per receiving domain and reason: the sender's problems."""
        reasons = sorted(r.value for r in self.policy.sender_reasons)
        query = (
            select(
                E.c.domain,
                E.c.reason,
                func.count().label("messages"),
                func.min(E.c.received_at).label("first_at"),
                func.max(E.c.received_at).label("last_at"),
            )
            .where(E.c.kind == Kind.FAILED.value, E.c.reason.in_(reasons))
            .group_by(E.c.domain, E.c.reason)
            .order_by(func.count().desc(), E.c.domain, E.c.reason)
        )
        if since is not None:
            query = query.where(E.c.received_at >= since)
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # --- policy apply -------------------------------------------------------------------

    def apply_policy(self, *, dry_run: bool) -> Iterator[Change]:
        """Recompute every address from its events and admin actions under the current
        settings; yield what differs, and write it unless `dry_run`."""
        last = 0
        while True:
            with self.read() as conn:
                ids = list(
                    conn.scalars(select(A.c.id).where(A.c.id > last).order_by(A.c.id).limit(CHUNK))
                )
            if not ids:
                return
            last = ids[-1]
            yield from self.write(lambda conn, ids=ids: self._reapply(conn, ids, dry_run))

    def _reapply(self, conn: Connection, ids: list[int], dry_run: bool) -> list[Change]:
        now = self.clock()
        locked = conn.execute(select(A).where(A.c.id.in_(ids)).order_by(A.c.id).with_for_update())
        rows = {r.id: r for r in locked}
        events = conn.execute(
            select(E.c.id, E.c.address_id, E.c.message_key, E.c.received_at, E.c.counts, E.c.kind)
            .add_columns(E.c.bounce_class, E.c.reason, E.c.status, E.c.reply_code, E.c.detector)
            .where(E.c.address_id.in_(ids))
            .order_by(E.c.address_id, E.c.received_at, E.c.id)
        )
        by_address = {k: list(g) for k, g in groupby(events, key=lambda e: e.address_id)}
        actions = conn.execute(
            select(L.c.address, L.c.action, L.c.at)
            .where(
                L.c.address.in_([r.address for r in rows.values()]),
                L.c.action.in_([a.value for a in Action]),
            )
            .order_by(L.c.address, L.c.at, L.c.id)
        )
        admin = {k: list(g) for k, g in groupby(actions, key=lambda a: a.address)}
        changes = []
        flips: dict[bool, list[int]] = {True: [], False: []}
        allowed = self._allowed(conn, [r.address for r in rows.values()])
        for aid, row in rows.items():
            before = self._state(conn, row, row.address in allowed)
            evs = by_address.get(aid, [])
            history = sorted(
                [(_utc(e.received_at), 1, e, _replay_event(e)) for e in evs]
                + [
                    (_utc(a.at), 0, None, AdminAction(Action(a.action), _utc(a.at)))
                    for a in admin.get(row.address, [])
                ],
                key=lambda t: (t[0], t[1], t[2].id if t[2] else 0),
            )
            after, counts = replay([h[3] for h in history], self.policy, allowed=before.allowed)
            stored = [h[2] for h in history if h[2] is not None]
            for e, counted in zip(stored, counts, strict=True):
                if e.counts != counted:
                    flips[counted].append(e.id)
            if _summary(after) != _summary(before):
                changes.append(Change(row.address, before, after))
                if not dry_run:
                    self._save(conn, row, after, now)
        if not dry_run:
            # Un-count first: the unique return key must hold after every statement.
            for counted in (False, True):
                for chunk in batched(flips[counted], CHUNK):
                    conn.execute(update(E).where(E.c.id.in_(chunk)).values(counts=counted))
        return changes


def _statements(insert: Any) -> SimpleNamespace:
    """The statements of the ingest path, built once: building a statement costs more
    than SQLite takes to run it, and a prebuilt one hits SQLAlchemy's compiled cache."""
    return SimpleNamespace(
        new_address=insert(A).on_conflict_do_nothing(),
        lock=select(A)
        .where(A.c.address.in_(bindparam("names", expanding=True)))
        .order_by(A.c.address)
        .with_for_update(),
        allowed=select(W.c.entry).where(W.c.entry.in_(bindparam("entries", expanding=True))),
        known=select(*(E.c[name] for name in _EVENT_KEY), E.c.counts).where(
            E.c.address_id.in_(bindparam("ids", expanding=True)),
            E.c.message_key.in_(bindparam("keys", expanding=True)),
        ),
        new_events=E.insert(),
        save=update(A).where(A.c.id == bindparam("row_id")),
    )


def _summary(state: AddressState) -> tuple[Any, ...]:
    """What `policy apply` compares: the verdict and the count, not timestamps that depend
    on the order in which concurrent writers committed."""
    s = state
    return (s.state, s.blocked_reason, s.auto_reason, s.returns, s.manual, s.former_employee)


def _replay_event(row: Any) -> Event:
    return Event(
        Kind(row.kind),
        _utc(row.received_at),
        BounceClass(row.bounce_class) if row.bounce_class else None,
        Reason(row.reason) if row.reason in Reason._value2member_map_ else None,
        row.status,
        row.reply_code,
        key=row.message_key,
        exhausted=row.detector == EXHAUSTED,
    )


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


def _filtered(query: Any, f: Filters) -> Any:
    """`query` over the address table, narrowed by the list filters."""
    if f.status:
        query = query.where(A.c.state.in_(f.status))
    if f.reason:
        query = query.where(or_(A.c.blocked_reason.in_(f.reason), A.c.last_reason.in_(f.reason)))
    if f.bounce_class:
        query = query.where(A.c.last_class.in_(f.bounce_class))
    if f.domain:
        query = query.where(A.c.domain.in_(f.domain))
    when = func.coalesce(A.c.blocked_at, A.c.last_return_at)
    if f.since is not None:
        query = query.where(when >= f.since)
    if f.until is not None:
        query = query.where(when < f.until)
    if f.min_returns is not None:
        query = query.where(A.c.returns >= f.min_returns)
    if f.selection:
        members = select(M.c.address_id).join(S, S.c.id == M.c.selection_id)
        query = query.where(A.c.id.in_(members.where(S.c.name == f.selection)))
    return query


def _describe(f: Filters) -> str:
    """Filters in words for the audit log (`--where` selections)."""
    values = {name: getattr(f, name) for name in Filters.__slots__}
    parts = [f"{k}={v}" for k, v in values.items() if v not in ((), None)]
    return " ".join(parts) or "all addresses"


_LOOKUP = "SELECT address, state, blocked_reason FROM address WHERE address"
_DETAILS = f"SELECT {', '.join(Details._fields)} FROM address WHERE address"


def alembic_config() -> Any:
    """Alembic's configuration for the migrations shipped in the package (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in _RETRY_SQLSTATES or "database is locked" in str(exc.orig)


def _is_connection_error(exc: DBAPIError) -> bool:
    """Failures of the connection itself (server down, wrong URL, unwritable file),
    as opposed to errors in a statement, which are bugs and must surface as such."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _engine(settings: Settings) -> Engine:
    """An engine for the configured URL: SQLite in WAL mode with a busy timeout and
    `BEGIN IMMEDIATE` for writes; PostgreSQL through psycopg 3 with a lock timeout."""
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise DatabaseUnavailable(
            f"not a database URL: {settings.database_url!r} "
            "(write e.g. sqlite:///bounced.db or postgresql://user@host/db)"
        ) from None
    timeout = settings.database_timeout.total_seconds()
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": timeout})
            _sqlite_events(engine, timeout)
        else:
            engine = create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
            _postgres_events(engine, timeout)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"unsupported database URL {url!r}: {exc}") from None
    return engine


def _sqlite_events(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # Let SQLAlchemy's "begin" below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A writer takes the write lock before reading what it will change.
        write = conn.get_execution_options().get("bounced_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_events(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(timeout * 1000)}")
        dbapi_conn.commit()
