"""The database: one engine, its transactions, its clock and its schema.

Every repository in `bounced.db` runs its statements through `Database.read` and
`Database.write`, so they share one error handling: an unreachable database is a
`DatabaseUnavailable` said in one line, and a write transaction that loses a
deadlock or a lock race (PostgreSQL serialization failures, SQLite's "database is
locked") is retried whole. Writers lock before they read what they change
(SQLite: `BEGIN IMMEDIATE`, one writer at a time; PostgreSQL: `SELECT … FOR
UPDATE`), which is what makes counting exact across processes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, overload

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from bounced.config import Settings
from bounced.db import partitions
from bounced.errors import BouncedError, DatabaseUnavailable, RefusedValue

__all__ = ["CHUNK", "SCHEMA_REVISION", "Database", "alembic_config", "batched", "utc"]

#: Rows per IN (...) query and per transaction of a bulk action.
CHUNK = 1000
_MIGRATIONS = Path(__file__).parent / "migrations"
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available
_ATTEMPTS = 8
#: How often a SQLite writer tries again for the write lock (`_begin_immediate`).
_POLL = 0.0005
#: The newest migration: revisions are named by their file's number prefix
#: (0001_initial.py is "0001"), so a directory listing says it without Alembic
#: (a test holds it equal to Alembic's head).
SCHEMA_REVISION = max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9]*.py"))
_LOCK_KEY = 0x626F756E636564  # "bounced": serialises concurrent migrations on PostgreSQL
_T = TypeVar("_T")


def _processed(
    rows: Iterable[Sequence[Any]],
    process: Sequence[Callable[[Any], Any] | None],
    *,
    shared: bool = False,
) -> list[list[Any]]:
    """Each of `rows` as a list, its values passed through the processor of their column
    (None: as it is). Only the columns that have one are visited. `shared`: the same
    value object is converted once (a batch's rows share their timestamps: the time of
    the batch, of the notice). By identity, since equal values need not convert alike
    (two aware times of the same instant in other zones); the memo holds each object,
    so its identity is not reused meanwhile."""
    active = [(i, p) for i, p in enumerate(process) if p is not None]
    done: dict[int, tuple[Any, Any]] = {}
    converted = []
    for row in rows:
        values = list(row)
        for i, p in active:
            value = values[i]
            if shared:
                seen = done.get(id(value))
                if seen is None:
                    seen = done[id(value)] = (value, p(value))
                values[i] = seen[1]
            else:
                values[i] = p(value)
        converted.append(values)
    return converted


def batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Consecutive lists of `size` items (itertools.batched arrived in Python 3.12)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC time (SQLite hands back naive ones)."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


class Database:
    """One connection pool, its transactions with retry, and the clock the store uses."""

    def __init__(
        self, engine: Engine, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.url = engine.url.render_as_string(hide_password=True)
        self.postgres = engine.dialect.name == "postgresql"
        path = engine.url.database or ":memory:"
        local = path != ":memory:" and not self.postgres
        self._turns = _Turns(path) if local else _NO_TURNS
        #: The dialect's INSERT (with on_conflict_do_nothing / on_conflict_do_update).
        self.insert: Any = pg_insert if self.postgres else sqlite_insert
        self._mark = "%s" if self.postgres else "?"
        self._bind: dict[tuple[Any, ...], list[Callable[[Any], Any] | None]] = {}
        self._readers: dict[str, tuple[Any, list[Callable[[Any], Any] | None]]] = {}

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> Database:
        """Connect; on an empty database create the schema; refuse an outdated one.
        `read_only` (a pure lookup: `bounced check`) opens an existing SQLite file
        without writing to it, so it also works on a file or directory this process
        may not write to."""
        engine = _engine(settings, read_only=read_only)
        database = cls(engine, settings, clock)
        if migrate:
            try:
                database.ensure_schema()
            except BaseException:
                engine.dispose()
                raise
        return database

    def close(self) -> None:
        self.engine.dispose()

    # --- schema -------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the schema in an empty database; refuse one at another revision."""
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

    def revision(self) -> str | None:
        """The schema revision the database is at; None before any migration ran."""
        with self.read() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def upgrade(self) -> str:
        """Bring the schema to the newest revision (a no-op when it is there); on
        PostgreSQL also create the event partitions of the coming months."""

        from alembic import command  # only here: opening a store never needs Alembic

        def work(conn: Connection) -> str:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if conn.dialect.name == "postgresql":
                partitions.ensure(conn, partitions.ahead(self.clock()))
            return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())

        return self.write(work)

    # --- bulk writes --------------------------------------------------------------------

    def insert_many(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        skip_existing: bool = False,
    ) -> None:
        """INSERT `rows` (mappings with the same keys) into `table` through the DB-API
        cursor (`skip_existing`: ON CONFLICT DO NOTHING). For the ingest path, where
        SQLAlchemy's work per statement and per value cost more than the database's (and
        the write lock is held meanwhile); the values go through the columns' own bind
        processors, so they are stored as SQLAlchemy stores them. SQLite: one
        executemany. PostgreSQL: COPY (the event table's statement trigger,
        bounced.db.partitions, then runs once, not per row), or with `skip_existing` an
        executemany (COPY knows no ON CONFLICT)."""
        names = tuple(rows[0])
        params = self._params(table, names, rows)
        if self.postgres and not skip_existing:
            self._copy(conn, f"COPY {table.name} ({', '.join(names)}) FROM STDIN", params)
            return
        marks = ", ".join([self._mark] * len(names))
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
        if skip_existing:
            sql += " ON CONFLICT DO NOTHING"
        self._cursor(conn, sql, params, many=True)

    def rows_in(
        self,
        conn: Connection,
        table: Table,
        column: str,
        values: Sequence[Any],
        *,
        lock: bool = False,
        skip_locked: bool = False,
    ) -> list[Any]:
        """The rows of `table` whose `column` is one of `values`, in its order, as named
        tuples with the values SQLAlchemy would give (its result processors), read
        through the DB-API cursor (see `insert_many`). `lock`: FOR UPDATE on PostgreSQL
        (`skip_locked`: leaving out rows another transaction holds); a SQLite writer
        holds the whole database already."""
        if not values:
            return []
        row_type, process = self._reader(table)
        names = ", ".join(row_type._fields)
        if self.postgres:
            where, params = f"{column} = ANY(%s)", [list(values)]
        else:
            where, params = f"{column} IN ({', '.join('?' * len(values))})", list(values)
        sql = f"SELECT {names} FROM {table.name} WHERE {where} ORDER BY {column}"
        if lock and self.postgres:
            sql += " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
        return [
            row_type._make(values)
            for values in _processed(self._cursor(conn, sql, params), process)
        ]

    def pairs_in(
        self,
        conn: Connection,
        table: Table,
        columns: tuple[str, str],
        pairs: Sequence[tuple[Any, Any]],
        names: Sequence[str],
    ) -> list[list[Any]]:
        """The `names` columns (with their result processors) of the rows of `table`
        whose two `columns` hold one of `pairs`: the pairs are a table of values joined
        to it, one index seek per pair. (Two IN lists, one per column, cost a seek per
        combination of the two: 160 000 for 400 pairs, in a query that slows as the
        table grows.)"""
        pairs = list(dict.fromkeys(pairs))  # a row once, however often its pair is given
        if not pairs:
            return []
        first, second = columns
        selected = ", ".join(f"{table.name}.{name}" for name in names)
        on = f"{table.name}.{first} = wanted.column1 AND {table.name}.{second} = wanted.column2"
        if self.postgres:
            dialect = self.engine.dialect
            a, b = (table.c[c].type.dialect_impl(dialect).compile(dialect) for c in columns)
            given = f"unnest(%s::{a}[], %s::{b}[]) AS wanted(column1, column2) JOIN"
            params: list[Any] = [[pair[0] for pair in pairs], [pair[1] for pair in pairs]]
        else:
            # CROSS JOIN is SQLite's word for "in this order": the pairs outside.
            given = f"(VALUES {', '.join(['(?, ?)'] * len(pairs))}) AS wanted CROSS JOIN"
            params = [value for pair in pairs for value in pair]
        sql = f"SELECT {selected} FROM {given} {table.name} ON {on}"
        _, process = self._reader(table)
        position = {column.name: i for i, column in enumerate(table.c)}
        return _processed(self._cursor(conn, sql, params), [process[position[n]] for n in names])

    def _reader(self, table: Table) -> tuple[Any, list[Callable[[Any], Any] | None]]:
        """A named tuple type for `table`'s rows and its columns' result processors."""
        found = self._readers.get(table.name)
        if found is None:
            dialect = self.engine.dialect
            columns = list(table.c)
            row_type = namedtuple(f"{table.name}_row", [c.name for c in columns])  # type: ignore[misc]
            types = [c.type.dialect_impl(dialect) for c in columns]
            found = (row_type, [t.result_processor(dialect, None) for t in types])
            self._readers[table.name] = found
        return found

    def update_many(
        self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
    ) -> None:
        """UPDATE `table` SET the other items of each of `rows` WHERE its primary key is
        the row's `key` item, in one executemany (see `insert_many`)."""
        names = tuple(name for name in rows[0] if name != key)
        sets = ", ".join(f"{name} = {self._mark}" for name in names)
        primary = table.primary_key.columns[0]
        sql = f"UPDATE {table.name} SET {sets} WHERE {primary.name} = {self._mark}"
        params = self._params(table, (*names, key), rows, {key: primary.name})
        self._cursor(conn, sql, params, many=True)

    def _params(
        self,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        columns: Mapping[str, str] | None = None,
    ) -> list[list[Any]]:
        """The `names` items of each of `rows`, bound as their columns bind them."""
        process = self._processors(table, tuple(names), tuple((columns or {}).items()))
        values = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        return _processed(map(values, rows), process, shared=True)

    def _copy(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL's COPY FROM STDIN of `rows`."""
        with self._raw(conn, sql) as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def _cursor(
        self, conn: Connection, sql: str, params: Sequence[Any], *, many: bool = False
    ) -> list[Any]:
        """Run `sql` on the DB-API cursor of `conn` (`many`: executemany), fetching what
        it returns."""
        with self._raw(conn, sql, params) as cursor:
            if many:
                cursor.executemany(sql, params)
                return []
            if self.postgres:
                # Not prepared: a generic plan of `= ANY($1)` was a sequential scan of
                # a growing table (psycopg prepares a query from its fifth run).
                cursor.execute(sql, params, prepare=False)
            else:
                cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    @contextmanager
    def _raw(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """The DB-API cursor of `conn`, its errors raised as SQLAlchemy raises them
        (IntegrityError, OperationalError, ...), so callers and `write`'s retry see one
        kind of error."""
        dbapi = self.engine.dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            yield cursor
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, params, exc, dbapi.Error) from None
        finally:
            cursor.close()

    def _processors(
        self, table: Table, names: tuple[str, ...], columns: tuple[tuple[str, str], ...]
    ) -> list[Callable[[Any], Any] | None]:
        """The bind processor of each named column (`columns` renames a key), built once."""
        found = self._bind.get((table.name, names, columns))
        if found is None:
            renamed, dialect = dict(columns), self.engine.dialect
            types = [table.c[renamed.get(n, n)].type.dialect_impl(dialect) for n in names]
            found = [t.bind_processor(dialect) for t in types]
            self._bind[(table.name, names, columns)] = found
        return found

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction; an unreachable database is a DatabaseError."""
        try:
            with self._connect() as conn, conn.begin():
                yield conn
        except DataError as exc:
            raise _refused(exc) from None
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

    def write(self, work: Callable[[Connection], _T], *, durable: bool = True) -> _T:
        """Run `work` in one write transaction, retried whole when it lost a lock race.
        `durable=False`: on PostgreSQL the commit does not wait for the WAL flush (for
        work that is harmless to lose in a crash, such as creating empty address rows)."""
        for attempt in range(_ATTEMPTS):
            try:
                deadline = time.monotonic() + self.settings.database_timeout.total_seconds()
                with self._connect() as conn, self._turns.turn(deadline):
                    conn = conn.execution_options(bounced_write=deadline)
                    with conn.begin():
                        if not durable and self.postgres:
                            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                        return work(conn)
            except DataError as exc:
                raise _refused(exc) from None
            except DBAPIError as exc:
                if _retryable(exc) and attempt < _ATTEMPTS - 1:
                    time.sleep(0.01 * 2**attempt)
                    continue
                if _is_connection_error(exc):
                    raise _db_error(exc, self.url) from None
                raise
        raise AssertionError("unreachable")


def alembic_config() -> Any:
    """Alembic's configuration for the migrations shipped in the package (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _refused(exc: DataError) -> RefusedValue:
    detail = str(exc.orig or exc).strip().splitlines()
    return RefusedValue(f"the database refused a value: {detail[0] if detail else exc}")


def _db_error(exc: BaseException, url: str) -> DatabaseUnavailable:
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return DatabaseUnavailable(f"cannot use database {url}: {detail}")


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in _RETRY_SQLSTATES or "database is locked" in str(exc.orig)


def _is_connection_error(exc: DBAPIError) -> bool:
    """Failures of the connection itself (server down, wrong URL, unwritable file),
    as opposed to errors in a statement, which are bugs and must surface as such."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _engine(settings: Settings, *, read_only: bool = False) -> Engine:
    """An engine for the configured URL: SQLite in WAL mode with a busy timeout and
    `BEGIN IMMEDIATE` for writes; PostgreSQL through psycopg 3 with a lock timeout.
    `read_only`: an existing SQLite file opened with `mode=ro` (`_read_only_sqlite`)."""
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
            opened = _read_only_sqlite(url) if read_only else url
            engine = create_engine(opened, connect_args={"timeout": timeout})
            _sqlite_events(engine, timeout, read_only=opened is not url)
        else:
            engine = create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
            _postgres_events(engine, timeout)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"unsupported database URL {url!r}: {exc}") from None
    return engine


def _read_only_sqlite(url: Any) -> Any:
    """The SQLite URL opened with `mode=ro` when the file exists (a new store is
    created, schema and all, as by any open). A WAL database needs its `-shm` file,
    which SQLite cannot create in a directory it may not write to; there, with no
    `-wal` file left by a writer, the file is opened as `immutable` (nothing can be
    writing it, and SQLite then reads it without a lock)."""
    path = Path(url.database or "")
    if url.database in (None, "", ":memory:") or not path.is_file():
        return url
    query = {"mode": "ro", "uri": "true"}
    folder = path.parent if str(path.parent) else Path(".")
    if not os.access(folder, os.W_OK) and not Path(f"{path}-wal").exists():
        query["immutable"] = "1"
    return url.set(database=f"file:{path}").update_query_dict(query)


def _sqlite_events(engine: Engine, timeout: float, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if read_only:  # setting the journal mode is a write
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock before reading what it will change.
        deadline = conn.get_execution_options().get("bounced_write")
        if deadline:
            _begin_immediate(conn, deadline, timeout)
        else:
            conn.exec_driver_sql("BEGIN")


def _begin_immediate(conn: Connection, deadline: float, timeout: float) -> None:
    """`BEGIN IMMEDIATE`, tried again every `_POLL` seconds while another writer holds
    the lock, until `deadline` (time.monotonic; SQLite's busy timeout is then set back
    to `timeout`). SQLite's own busy handler sleeps in steps growing to 100 ms: a writer
    waiting behind a 5 ms transaction slept 10 to 25, and with four writers most of
    their time went asleep instead of into ingesting. (bounced's writers wait for their
    turn first, `_Turns`: this polls only behind a writer that is not bounced.)"""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from None
            time.sleep(_POLL)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()


class _Turns:
    """The turns of bounced's writers at one SQLite file: an flock of `<file>-writer`,
    taken around each write transaction.

    `BEGIN IMMEDIATE` alone makes a waiting writer poll (`_begin_immediate`): four
    ingesting processes on two cores woke thousands of times a second, and a waking
    poller took the CPU from the writer holding the lock, which then held it longer. A
    writer waiting for its turn sleeps in the kernel until the turn is free. The turn
    is only a queue: the database's lock still decides, so a writer that waited for its
    turn until the deadline (a transaction that long is a stuck one) goes on to `BEGIN
    IMMEDIATE` without it, which fails at the deadline as it always did."""

    def __init__(self, path: str) -> None:
        self._path = f"{path}-writer"
        self._fd: int | None = None
        self._threads = threading.Lock()

    @contextmanager
    def turn(self, deadline: float) -> Iterator[None]:
        if not self._threads.acquire(timeout=max(deadline - time.monotonic(), 0)):
            yield
            return
        try:
            fd = self._take(deadline)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _take(self, deadline: float) -> int | None:
        """The lock file's descriptor, flocked; None when the file cannot be opened (a
        folder this process may not write) or the deadline passed first."""
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                return None
        fd = self._fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        # Wait in a thread of its own, so that the wait can end at the deadline; a turn
        # that comes after it is handed straight back.
        taken, late = threading.Event(), threading.Lock()
        abandoned = False

        def wait() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with late:
                if abandoned:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    taken.set()

        threading.Thread(target=wait, daemon=True).start()
        if taken.wait(max(deadline - time.monotonic(), 0)):
            return fd
        with late:
            abandoned = not taken.is_set()
        return None if abandoned else fd


class _NoTurns:
    """PostgreSQL (row locks) and an in-memory SQLite database: no turns to take."""

    @contextmanager
    def turn(self, deadline: float) -> Iterator[None]:
        yield


_NO_TURNS = _NoTurns()


def _postgres_events(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(timeout * 1000)}")
        dbapi_conn.commit()
