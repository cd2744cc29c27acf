"""The PostgreSQL event table by month (migration 0008, bounced.db.partitions): the
migration keeps every row and the duplicate keys, partitions are made ahead (by
several workers at once too), a prune drops whole months, and an event for a month
without a partition lands in the default one and is never lost. SQLite keeps one
table (its side of each of these runs in test_store and test_retention)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from helpers.clock import Clock
from helpers.dsn import make_dsn, sender_side, soft
from helpers.retention import open_store
from sqlalchemy.exc import IntegrityError

from bounced.config import RetrySettings
from bounced.db import partitions
from bounced.db.database import SCHEMA_REVISION, alembic_config
from bounced.db.partitions import AHEAD, DEFAULT_PARTITION, Month, ahead
from bounced.sending.log import SendingLog
from bounced.sending.worker import Worker
from bounced.suppressions import Outcome

EVENT_ROWS = "SELECT * FROM event ORDER BY id"
#: Each event with the key row it owns (none: NULL), by id.
KEYS_OF_EVENTS = (
    "SELECT e.id, k.counts, k.received_at = e.received_at FROM event e LEFT JOIN event_key k"
    " USING (address_id, message_key, kind, status, notice) ORDER BY e.id"
)


def dsn(address, i, rcpt=soft):
    return make_dsn(rcpt(address), original_id=f"<m{i}@x.example>", message_id=f"<d{i}@x>")


def query(sup, sql):
    with sup.store.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def columns(sup):
    """The event table's columns, in order."""
    sql = (
        "SELECT attname FROM pg_attribute WHERE attrelid = 'event'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    )
    return [name for (name,) in query(sup, sql)]


def partition_of(sup):
    """Each event's partition, by id."""
    return dict(query(sup, "SELECT id, tableoid::regclass::text FROM event ORDER BY id"))


def attached(sup):
    with sup.store.engine.connect() as conn:
        return partitions.attached(conn)


def test_the_migration_keeps_every_row_and_the_duplicate_keys(postgres_url):
    """A populated store at 0007 (one plain table) upgraded: the same rows, each in its
    month's partition, each with its key; a repeated notice is still a duplicate and a
    new notice of a counted message still counts once."""
    clock = Clock()
    with open_store(postgres_url, clock, max_returns=1000) as sup:
        for i in range(12):  # a notice every 40 days, over 15 months
            sup.ingest(dsn(f"u{i % 3}@example.com", i), received_at=clock())
            clock.move(days=40)
        with sup.store.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        (kind,) = query(sup, "SELECT relkind FROM pg_class WHERE oid = 'event'::regclass")
        assert kind == ("r",)  # the pre-0008 table
        rows = query(sup, EVENT_ROWS)
        states = {a: sup.show(a)["address"] for a in ("u0@example.com", "u1@example.com")}
        assert sup.upgrade() == SCHEMA_REVISION
        assert query(sup, EVENT_ROWS) == rows
        placed = partition_of(sup)
        at = columns(sup).index("received_at")
        assert {i: Month.named(p) for i, p in placed.items()} == {
            row[0]: Month.of(row[at]) for row in rows
        }
        assert query(sup, KEYS_OF_EVENTS) == [(row[0], True, True) for row in rows]
        first = Month.of(Clock()())
        assert set(partitions.months(first, Month.of(clock()))) <= set(attached(sup))
        for i in range(12):
            again = sup.ingest(dsn(f"u{i % 3}@example.com", i), received_at=clock())
            assert again.outcome is Outcome.DUPLICATE
        resend = make_dsn(soft("u0@example.com"), original_id="<m0@x.example>", message_id="<e>")
        assert sup.ingest(resend, received_at=clock()).outcome is Outcome.RECORDED
        assert {a: sup.show(a)["address"] for a in states} == states  # counted once: no change
        assert len(query(sup, EVENT_ROWS)) == len(rows) + 1


def test_the_unique_keys_hold_across_months(postgres_url):
    """The same key in another month's partition is refused by the database itself,
    as the unique index on one table refused it (the store never tries: it reads the
    keys first)."""
    clock = Clock()
    with open_store(postgres_url, clock) as sup:
        sup.ingest(dsn("a@example.com", 1), received_at=clock())
        moved = {"id": "nextval('event_id_seq')", "received_at": "received_at + {shift}"}
        values = ", ".join(moved.get(c, c) for c in columns(sup))
        copy = f"INSERT INTO event SELECT {values} FROM event"
        for months in (1, 40):  # the next month's partition; the default one
            with (
                pytest.raises(IntegrityError, match="uq_event_notice"),
                sup.store.engine.begin() as conn,
            ):
                conn.exec_driver_sql(copy.format(shift=f"interval '{months} months'"))
        assert len(query(sup, EVENT_ROWS)) == 1


def test_partitions_are_made_ahead_by_upgrade_and_by_the_worker_prune(postgres_url):
    clock = Clock()
    with open_store(postgres_url, clock, keep="0") as sup:
        assert attached(sup) == ahead(clock())
        assert len(ahead(clock())) == AHEAD + 1
        assert sup.upgrade() == SCHEMA_REVISION
        assert attached(sup) == ahead(clock())  # idempotent
        clock.move(days=62)
        sup.upgrade()
        assert attached(sup) == partitions.months(Month.of(Clock()()), ahead(clock())[-1])
        clock.move(days=31)
        worker = Worker(SendingLog(sup, RetrySettings()), None)
        assert worker.run_once().pruned == 0  # keeping every event, it makes partitions
        assert attached(sup)[-1] == ahead(clock())[-1]


def test_several_workers_make_each_partition_once(postgres_url):
    clock = Clock()
    with open_store(postgres_url, clock) as sup:
        wanted = partitions.months(Month(2030, 1), Month(2031, 12))
        start = threading.Barrier(4)
        made: list[list[str]] = []
        errors: list[BaseException] = []

        def worker() -> None:
            start.wait()
            try:
                made.append(sup.store.database.write(lambda c: partitions.ensure(c, wanted)))
            except BaseException as exc:  # reported below, with the test's failure
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(n for names in made for n in names) == [m.name for m in wanted]
        assert set(wanted) <= set(attached(sup))


def test_an_event_of_a_month_without_partition_lands_in_the_default_one(postgres_url):
    """Never lose a bounce: years back or years ahead, it is recorded; once its month's
    partition is made, the event moves there, and is still the one it was."""
    clock = Clock()
    with open_store(postgres_url, clock) as sup:
        old, ahead_ = datetime(2019, 5, 3, tzinfo=UTC), datetime(2031, 7, 9, tzinfo=UTC)
        for i, at in enumerate((old, ahead_)):
            assert sup.ingest(dsn("a@example.com", i), received_at=at).outcome is Outcome.RECORDED
        assert set(partition_of(sup).values()) == {DEFAULT_PARTITION}
        with sup.store.engine.begin() as conn:
            assert partitions.ensure(conn, [Month(2031, 7)]) == ["event_2031_07"]
        assert sorted(partition_of(sup).values()) == ["event_2031_07", DEFAULT_PARTITION]
        assert sup.ingest(dsn("a@example.com", 1), received_at=ahead_).outcome is Outcome.DUPLICATE
        assert [e["received_at"] for e in sup.show("a@example.com")["events"]] == [old, ahead_]
        assert sup.show("a@example.com")["address"]["returns"] == 2


def test_prune_drops_whole_months_and_their_keys(postgres_url):
    clock = Clock()
    with open_store(postgres_url, clock, keep="0", max_returns=1000) as sup:
        for day in range(0, 520, 4):
            sup.ingest(dsn(f"u{day % 5}@example.com", day), received_at=clock())
            clock.move(days=4)
            sup.prune()  # the worker's pass (keeping all): partitions made as months come
    with open_store(postgres_url, clock, keep="400d", max_returns=1000) as sup:
        before = {a: sup.show(a)["address"] for a in (f"u{k}@example.com" for k in range(5))}
        horizon = clock() - timedelta(days=400)
        ended = [m for m in attached(sup) if m.end <= horizon]
        assert ended and DEFAULT_PARTITION not in partition_of(sup).values()
        dry = sup.prune(dry_run=True)
        assert dry.partitions == tuple(m.name for m in ended)
        done = sup.prune()
        assert (done.partitions, done.events) == (dry.partitions, dry.events)
        assert not set(ended) & set(attached(sup))
        assert all(Month.of(at) >= Month.of(horizon) for (at,) in query(
            sup, "SELECT received_at FROM event"))  # fmt: skip
        assert query(sup, "SELECT count(*) FROM event_key") == query(
            sup, "SELECT count(*) FROM event"
        )
        assert all(row[1] is not None for row in query(sup, KEYS_OF_EVENTS))
        assert {a: sup.show(a)["address"] for a in before} == before
        # A notice of a pruned month, again: no longer a duplicate (README, Retention).
        assert sup.ingest(dsn("u0@example.com", 0), received_at=clock()).outcome is (
            Outcome.RECORDED
        )


def test_policy_apply_and_delete_keep_the_keys_in_step(postgres_url):
    clock = Clock()
    with open_store(postgres_url, clock, max_returns=5) as sup:
        for i in range(3):
            sup.ingest(dsn("p@example.com", i, sender_side), received_at=clock())
            sup.ingest(dsn("q@example.com", i), received_at=clock())
            clock.move(days=45)
        counted = query(sup, "SELECT id, counts FROM event ORDER BY id")
    with open_store(postgres_url, clock, max_returns=5, sender_reasons=frozenset()) as sup:
        assert sup.apply_policy(dry_run=False)
        flipped = query(sup, "SELECT id, counts FROM event ORDER BY id")
        assert flipped != counted
        assert query(sup, KEYS_OF_EVENTS) == [(i, c, True) for i, c in flipped]
        sup.delete(["q@example.com"])
        assert query(sup, "SELECT count(*) FROM event_key") == [(3,)]
        again = sup.ingest(dsn("q@example.com", 0), received_at=clock())
        assert again.outcome is Outcome.RECORDED  # its keys went with it
