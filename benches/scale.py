#!/usr/bin/env python3
"""A store at a year of traffic: the same measurements on an empty store and on one
grown to --events bounce events (default 10^6; the issue asks 10^7 on PostgreSQL)
for --addresses addresses (default 10^6), on SQLite and on PostgreSQL (--postgres).

Growth is bulk-loaded (COPY on PostgreSQL, into the monthly partitions of the
events; executemany on SQLite) into the schema `bounced` created: addresses with
states consistent with their events (a fifth blocked), events spread over 13
months. Measured through the Python API, in this process, on the empty store first
and on the grown one after:

- check: one address, --samples times: p50 and p99 latency;
- bulk check: --bulk addresses (default 10^6, half of them in the store);
- list: the first page (50) of `list --status blocked`, its median of --pages
  requests (a single timing was at the mercy of a noisy moment); show: one address;
- ingest: --ingest generated notices (benches/store.py's generator), messages/s;
- prune (grown store only): the oldest month of events, events/s (on PostgreSQL the
  month's partition dropped whole, after its keys);
- size: the database (SQLite: the file; PostgreSQL: the schema's relations) per
  million events.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import generate, pg_schema

from bounced.config import Settings, StoreSettings
from bounced.db import partitions
from bounced.db.filters import Filters
from bounced.inputs.sources import iter_sources
from bounced.suppressions import Suppressions

NOW = datetime.now(UTC)
SPAN = timedelta(days=395)
PAGE = 50


def address(i: int) -> str:
    return f"user{i}@domain{i % 4999}.example"


def address_rows(n: int) -> Any:
    """(address, domain, state, blocked_reason, auto_reason, returns, times ...)."""
    when = NOW - timedelta(days=30)
    for i in range(n):
        blocked = i % 5 == 0
        yield (
            address(i),
            f"domain{i % 4999}.example",
            "blocked" if blocked else "active",
            "hard" if blocked else None,
            "hard" if blocked else None,
            10,
            when,
            when,
            when if blocked else None,
        )


def event_rows(events: int, addresses: int, rng: random.Random) -> Any:
    """(address_id, message_key, notice, kind, status, domain, received_at, counts):
    every event a new original message (counts), spread over SPAN."""
    for k in range(events):
        a = rng.randrange(addresses)
        at = NOW - SPAN * (1 - k / events)
        yield (a + 1, f"mid:m{k}@s", f"<n{k}@mx>", "failed", "5.1.1",
               f"domain{a % 4999}.example", at, True)  # fmt: skip


ADDRESS_SQL = (
    "INSERT INTO address (address, domain, state, blocked_reason, auto_reason, returns,"
    " first_return_at, last_return_at, blocked_at, manual, former_employee, last_reason,"
    " last_status, last_class, created_at, updated_at)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, false, false, 'user_unknown',"
    " '5.1.1', 'hard', {p}, {p})"
)
EVENT_COLUMNS = "address_id, message_key, notice, kind, status, domain, received_at, counts"
#: The other event columns, the same for every generated event.
EVENT_TEXT = {"bounce_class": "hard", "reason": "user_unknown", "reply_code": "550",
              "diagnostic": "", "remote_mta": "", "reporting_mta": "", "source": "bench",
              "original_message_id": "", "feedback_type": "", "detector": ""}  # fmt: skip
EVENT_SQL = f"{EVENT_COLUMNS}, {', '.join(EVENT_TEXT)}"


def grow_sqlite(path: Path, events: int, addresses: int) -> None:
    con = sqlite3.connect(path)
    con.executemany(
        ADDRESS_SQL.format(p="?").replace("false", "0"),
        _sqlite_times((*r, NOW, NOW) for r in address_rows(addresses)),
    )
    rows = event_rows(events, addresses, random.Random(7))
    marks = ", ".join("?" * (8 + len(EVENT_TEXT)))
    texts = tuple(EVENT_TEXT.values())
    con.executemany(
        f"INSERT INTO event ({EVENT_SQL}) VALUES ({marks})",
        (r + texts for r in _sqlite_times(rows)),
    )
    con.commit()
    con.close()


def _sqlite_times(rows: Any) -> Any:
    """SQLite stores times as naive UTC text, as bounced's UTCDateTime writes them."""
    for row in rows:
        yield tuple(
            v.replace(tzinfo=None).isoformat(" ") if isinstance(v, datetime) else v for v in row
        )


def grow_postgres(url: str, events: int, addresses: int) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False)) as conn:
        with conn.cursor().copy(
            "COPY address (address, domain, state, blocked_reason, auto_reason, returns,"
            " first_return_at, last_return_at, blocked_at, manual, former_employee,"
            " last_reason, last_status, last_class, created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in address_rows(addresses):
                copy.write_row((*row, False, False, "user_unknown", "5.1.1", "hard", NOW, NOW))
        texts = tuple(EVENT_TEXT.values())
        with conn.cursor().copy(f"COPY event ({EVENT_SQL}) FROM STDIN") as copy:
            for row in event_rows(events, addresses, random.Random(7)):
                copy.write_row(row + texts)
        conn.execute("ANALYZE")


def size(url: str, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        return sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False)) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
        return int(row[0] or 0) if row else 0


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(sup: Suppressions, args: argparse.Namespace, work: Path, label: str) -> dict:
    rng = random.Random(3)
    known = [address(rng.randrange(args.addresses)) for _ in range(args.samples)]
    latencies = sorted(timed(lambda a=a: sup.check(a)) for a in known)
    bulk = [address(i) if i % 2 else f"nobody{i}@else.example" for i in range(args.bulk)]
    rng.shuffle(bulk)
    blocked = Filters(status=("blocked",))
    shows = sorted(timed(lambda a=a: sup.store.show(a)) for a in known[:200])
    pages = [timed(lambda: list(sup.list(blocked, limit=PAGE))) for _ in range(args.pages)]
    figures = {
        "check p50 ms": 1000 * statistics.median(latencies),
        "check p99 ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        f"bulk check {args.bulk:,} s": timed(lambda: sum(1 for _ in sup.check_many(bulk))),
        "list blocked page p50 ms": 1000 * statistics.median(pages),
        "show p50 ms": 1000 * statistics.median(shows),
    }
    # Last: the ingest adds to the store the other figures are about.
    shares = generate(work / label, args.ingest)
    sources = [(s.name, s.raw) for path in shares for s in iter_sources([str(path)])]
    ingest = timed(lambda: sum(1 for _ in sup.ingest_many(sources)))
    return figures | {"ingest msg/s": args.ingest / ingest}


def run(name: str, url: str, sqlite_path: Path | None, args: argparse.Namespace) -> None:
    events = args.events if sqlite_path is None else args.sqlite_events
    work = Path(tempfile.mkdtemp(prefix=f"scale-{name}-"))
    (work / "empty").mkdir()
    (work / "grown").mkdir()
    settings = Settings(database_url=url, store=StoreSettings(keep_events=SPAN - timedelta(30)))
    with Suppressions.open(settings) as sup:
        empty = measure(sup, args, work, "empty")
    print(f"{name}: growing to {events:,} events for {args.addresses:,} addresses", flush=True)
    if sqlite_path is not None:
        for path in sqlite_path.parent.glob(sqlite_path.name + "*"):
            path.unlink()
        Suppressions.open(settings).close()  # a fresh schema, no rows
        load = timed(lambda: grow_sqlite(sqlite_path, events, args.addresses))
    else:
        load = timed(lambda: _fresh_postgres(url, events, args))
    grown_size = size(url, sqlite_path)
    with Suppressions.open(settings) as sup:
        grown = measure(sup, args, work, "grown")
        pruning = time.perf_counter()
        pruned = sup.prune()
        prune_rate = pruned.events / (time.perf_counter() - pruning)
    print(f"{name}: loaded in {load:.0f} s; {grown_size / events * 1e6 / 2**20:,.0f} MiB per"
          f" million events ({grown_size / 2**20:,.0f} MiB); pruned {pruned.events:,} events"
          f" at {prune_rate:,.0f} /s in {pruned.batches} batches"
          f" (partitions dropped: {', '.join(pruned.partitions) or 'none'})")  # fmt: skip
    print(f"  {'':24} {'empty':>10} {'grown':>10} {'grown/empty':>12}")
    for key, before in empty.items():
        print(f"  {key:24} {before:10,.2f} {grown[key]:10,.2f} {grown[key] / before:12.2f}")


def _fresh_postgres(url: str, events: int, args: argparse.Namespace) -> None:
    """The measured empty store's rows deleted, the partitions of the grown span's
    months made (as the worker would have made them month by month), then the
    growth copied in: COPY routes each row to its month, and the key table's trigger
    writes its key in the same statement."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False)) as conn:
        conn.execute("TRUNCATE event, address RESTART IDENTITY CASCADE")
    span = partitions.months(partitions.Month.of(NOW - SPAN), partitions.Month.of(NOW))
    with Suppressions.open(Settings(database_url=url)) as sup:
        sup.store.database.write(lambda conn: partitions.ensure(conn, span))
    grow_postgres(url, events, args.addresses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="PostgreSQL")
    parser.add_argument("--sqlite-events", type=int, default=1_000_000)
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--ingest", type=int, default=5000)
    parser.add_argument("--postgres", default=os.environ.get("BOUNCED_TEST_DATABASE_URL"))
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="scale-sqlite-") as tmp:
            path = Path(tmp) / "scale.db"
            run("sqlite", f"sqlite:///{path}", path, args)
    if args.postgres:
        url, drop = pg_schema(args.postgres)
        try:
            run("postgresql", url, None, args)
        finally:
            drop()  # type: ignore[operator]


if __name__ == "__main__":
    main()
