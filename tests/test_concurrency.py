"""Exact counting under concurrency: 4 processes ingesting overlapping bounces at once
end in the same state as one process ingesting them once."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers.dsn import Rcpt, delayed, make_dsn, sender_side, soft
from helpers.listener import eventually
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bounced.config import PolicySettings, Settings
from bounced.suppressions import Suppressions

PROCESSES = 4
POLICY = {"max_returns": 3}

WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from bounced.suppressions import Suppressions
    from bounced.config import PolicySettings, Settings
    url, listing, go = sys.argv[1:4]
    paths = pathlib.Path(listing).read_text().split()
    while not pathlib.Path(go).exists():
        time.sleep(0.005)
    settings = Settings(database_url=url, policy=PolicySettings(max_returns=3))
    with Suppressions.open(settings) as sup:
        for result in sup.ingest_many((p, pathlib.Path(p).read_bytes()) for p in paths):
            pass
    """
)


def corpus(tmp_path, rng):
    """Bounces for 30 addresses: hard, soft, sender-side and delays; original messages
    drawn from a small pool so the same message comes back through several bounces."""
    kinds = [Rcpt, soft, soft, soft, sender_side, delayed]
    paths = []
    for i in range(150):
        recipients = rng.sample(range(30), rng.randint(1, 3))
        rows = [rng.choice(kinds)(f"user{n}@example.com") for n in recipients]
        raw = make_dsn(*rows, original_id=f"<o{rng.randrange(40)}@x>", message_id=f"<b{i}@x>")
        path = tmp_path / f"b{i}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def snapshot(url):
    settings = Settings(database_url=url, policy=PolicySettings(**POLICY))
    with Suppressions.open(settings) as sup:
        rows = {r["address"]: (r["state"], r["blocked_reason"], r["returns"]) for r in sup.list()}
        events = {a: len(sup.show(a)["events"]) for a in rows}
    return rows, events


def test_four_processes_count_like_one(database_url, tmp_path):
    rng = random.Random(4)
    paths = corpus(tmp_path, rng)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    settings = Settings(database_url=reference, policy=PolicySettings(**POLICY))
    with Suppressions.open(settings) as sup:
        list(sup.ingest_many((str(p), p.read_bytes()) for p in paths))

    # Create the schema first: four processes racing to migrate is a separate question.
    Suppressions.open(Settings(database_url=database_url)).close()
    go = tmp_path / "go"
    workers = []
    for n in range(PROCESSES):
        order = paths[:]
        rng.shuffle(order)
        listing = tmp_path / f"list{n}"
        listing.write_text("\n".join(map(str, order)))
        cmd = [sys.executable, "-c", WORKER, database_url, str(listing), str(go)]
        workers.append(subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True))
    time.sleep(0.2)
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err

    expected, expected_events = snapshot(reference)
    got, got_events = snapshot(database_url)
    assert got == expected
    assert got_events == expected_events
    assert any(state == ("blocked", "returns", 3) for state in expected.values())
    assert any(reason == "hard" for _, reason, _ in expected.values())


def test_concurrent_first_open_migrates_once(database_url, tmp_path):
    go = tmp_path / "go"
    listing = tmp_path / "empty"
    listing.write_text("")
    cmd = [sys.executable, "-c", WORKER, database_url, str(listing), str(go)]
    workers = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    assert snapshot(database_url) == ({}, {})


def test_a_batch_records_around_an_address_another_writer_holds(database_url):
    """PostgreSQL: a batch does not wait for an address another transaction holds; it
    records the other addresses at once, and the held one's rows, in their order,
    once the holder commits."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer at a time")
    settings = Settings(database_url=database_url, policy=PolicySettings(max_returns=2))
    with Suppressions.open(settings) as sup:
        sup.ingest(make_dsn(soft("held@example.com"), original_id="<m0@x>", message_id="<d0>"))
        batch = [
            (f"m{i}", make_dsn(soft(a), original_id=f"<m{i}@x>", message_id=f"<d{i}>"))
            for i, a in enumerate(
                ["free@example.com", "held@example.com", "held@example.com"], start=1
            )
        ]
        holder = sup.store.database.engine.connect()
        holder.begin()
        holder.execute(text("SELECT id FROM address WHERE address = 'held@example.com' FOR UPDATE"))
        results: list = []
        writer = threading.Thread(target=lambda: results.extend(sup.ingest_many(batch)))
        writer.start()
        try:
            eventually(lambda: sup.show("free@example.com")["events"], "the free address recorded")
            assert len(sup.show("held@example.com")["events"]) == 1
            assert not results
        finally:
            holder.rollback()
            holder.close()
        writer.join()
        assert [r.source for r in results] == ["m1", "m2", "m3"]
        held = sup.show("held@example.com")
        assert [e["message_key"] for e in held["events"]] == ["mid:m0@x", "mid:m2@x", "mid:m3@x"]
        assert held["address"]["returns"] == 3
        assert held["address"]["state"] == "blocked"


# --- a writer between the decisions and the locks -----------------------------------------

ROW = st.tuples(
    st.integers(0, 2),  # address
    st.integers(0, 3),  # original message
    st.sampled_from([Rcpt, soft, sender_side, delayed]),
    st.integers(0, 2),  # notice
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ours=st.lists(ROW, min_size=1, max_size=8), theirs=st.lists(ROW, min_size=1, max_size=6))
def test_a_writer_between_the_decisions_and_the_locks_counts_first(database_url, ours, theirs):
    """A batch is decided before its writer takes the locks (`record`); another writer
    that records in between (the same notices, returns of the same addresses) is
    accounted for: the store ends as if the other writer's rows came first, and the
    batch's rows say what recording them after those says (duplicates included)."""
    run = uuid.uuid4().hex[:8]

    def notices(rows, who):
        return [
            (f"{who}{k}", make_dsn(kind(f"a{a}-{run}@example.com"),
                                   original_id=f"<o{m}-{run}@x>", message_id=f"<n{n}-{run}@x>"))
            for k, (a, m, kind, n) in enumerate(rows)
        ]  # fmt: skip

    def outcome(sup, results):
        addresses = {r.address for result in results for r in result.rows}
        shown = {a: sup.show(a) for a in sorted(addresses)}
        return (
            [(r.outcome, [(x.duplicate, sorted(x.effects)) for x in r.rows]) for r in results],
            {a: (s["address"]["state"], s["address"]["returns"]) for a, s in shown.items()},
            {a: sorted((e["notice"], e["counts"]) for e in s["events"]) for a, s in shown.items()},
        )

    settings = Settings(database_url=database_url, policy=PolicySettings(max_returns=2))
    with Suppressions.open(settings) as sup, Suppressions.open(settings) as other:
        read = sup.store.database.read
        intruders = notices(theirs, "theirs")

        @contextmanager
        def read_then_another_writer() -> Iterator[Any]:
            with read() as conn:
                yield conn
            while intruders:
                list(other.ingest_many([intruders.pop()]))

        sup.store.database.read = read_then_another_writer  # type: ignore[method-assign]
        got = outcome(sup, list(sup.ingest_many(notices(ours, "ours"))))
        assert not intruders
    run = uuid.uuid4().hex[:8]  # the same rows again, for other addresses, one writer
    with Suppressions.open(settings) as sup:
        list(sup.ingest_many(reversed(notices(theirs, "theirs"))))
        expected = outcome(sup, list(sup.ingest_many(notices(ours, "ours"))))
    assert _renamed(got) == _renamed(expected)


def _renamed(outcome):
    """An outcome with the run's token taken out of addresses and notices."""
    return json.loads(re.sub(r"-[0-9a-f]{8}", "", json.dumps(outcome, default=str)))


# --- an event committed late, under the decisions' horizon --------------------------------


def test_an_event_committed_late_under_the_horizon_is_refused_and_counted_once(postgres_url):
    """PostgreSQL hands out event ids before commit, so an event of another writer can
    commit after a batch's decisions with an id below the newest the batch saw; the
    check for events stored since then cannot see it, and only the unique key can.
    Here: B stores a delay for X and holds it uncommitted; C commits an event of Y (a
    higher id); A decides the same delay for X, then B commits. A's insert meets the
    unique key, A decides again under the locks, and the delay is stored once, A's
    row a duplicate (without the fallback A's ingest fails)."""
    settings = Settings(database_url=postgres_url)
    delay = make_dsn(delayed("x@example.com"), original_id="<m1@x>", message_id="<d1@x>")
    with (
        Suppressions.open(settings) as a,
        Suppressions.open(settings) as b,
        Suppressions.open(settings) as c,
    ):
        a.ingest(make_dsn(delayed("x@example.com"), original_id="<m0@x>", message_id="<d0@x>"))
        b_stored, a_decided = threading.Event(), threading.Event()
        write, read = b.store.database.write, a.store.database.read

        def write_then_hold(work, **options):
            def held(conn):
                result = work(conn)
                if _events_of(conn, "x@example.com") == 2:  # the delay, not committed
                    b_stored.set()
                    assert a_decided.wait(30)
                return result

            return write(held, **options)

        @contextmanager
        def read_then_let_go() -> Iterator[Any]:
            with read() as conn:
                yield conn
            a_decided.set()

        b.store.database.write = write_then_hold  # type: ignore[method-assign]
        a.store.database.read = read_then_let_go  # type: ignore[method-assign]
        thread = threading.Thread(target=b.ingest, args=(delay,))
        thread.start()
        try:
            assert b_stored.wait(30)
            c.ingest(make_dsn(soft("y@example.com"), original_id="<m2@x>", message_id="<d2@x>"))
            ours = a.ingest(delay)
        finally:
            a_decided.set()
            thread.join()
        events = a.show("x@example.com")["events"]
        y_events = a.show("y@example.com")["events"]
    assert [row.duplicate for row in ours.rows] == [True]
    assert sorted(e["message_key"] for e in events) == ["mid:m0@x", "mid:m1@x"]
    # The scenario held: B's delay has the lower id and was committed last.
    assert max(e["id"] for e in events) < y_events[0]["id"]


def _events_of(conn, address: str) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM event JOIN address ON address.id = event.address_id"
            " WHERE address.address = :a"
        ),
        {"a": address},
    ).scalar()
