"""Retention on both databases: `[store] keep_events`, `bounced db prune` and the
worker delete old events in batches and leave every address's state and counts as
they were."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from helpers.clock import Clock
from helpers.dsn import make_dsn, soft
from helpers.retention import open_store

from bounced.config import RetrySettings
from bounced.errors import ConfigError
from bounced.sending.log import SendingLog
from bounced.sending.worker import Worker
from bounced.suppressions import Suppressions

STATE = ("state", "blocked_reason", "returns", "first_return_at", "last_return_at", "blocked_at")


def bounce(sup, clock, address, i):
    raw = make_dsn(soft(address), original_id=f"<m{i}@x.example>", message_id=f"<d{i}@x>")
    sup.ingest(raw, source=f"msg{i}", received_at=clock())


def fill(sup, clock, days=500, addresses=5):
    """A bounce a day for `days` days, to `addresses` addresses in turn."""
    for day in range(days):
        bounce(sup, clock, f"user{day % addresses}@example.com", day)
        clock.move(days=1)


def states(sup, addresses):
    return {a: {k: sup.show(a)["address"][k] for k in STATE} for a in addresses}


def event_times(sup, address):
    return [e["received_at"] for e in sup.show(address)["events"]]


def test_prune_deletes_only_old_events_and_changes_no_state(database_url):
    clock = Clock()
    with open_store(database_url, clock, max_returns=1000) as sup:
        fill(sup, clock)
        names = [f"user{k}@example.com" for k in range(5)]
        before = states(sup, names)
        assert all(s["returns"] == 100 for s in before.values())
        dry = sup.prune(dry_run=True)
        assert dry.events == 100  # days 0..99 are older than 400 days at day 500
        assert sum(len(event_times(sup, a)) for a in names) == 500  # a dry run deletes none
        done = sup.prune()
        assert (done.events, done.before) == (dry.events, clock() - timedelta(days=400))
        assert states(sup, names) == before
        kept = [t for a in names for t in event_times(sup, a)]
        assert len(kept) == 500 - dry.events
        assert min(kept) >= done.before
        assert sup.prune().events == 0


def test_prune_goes_in_batches(database_url):
    """50 events before the horizon (day 50 of 450: 21 April 2026). SQLite deletes them
    7 a batch. PostgreSQL drops March's partition (its 30 events) once its keys are
    deleted, 7 a batch, then deletes April's 20 events 7 a batch."""
    clock = Clock()
    with open_store(database_url, clock, max_returns=1000) as sup:
        fill(sup, clock, days=450)
        retention = sup.store.retention
        one = retention.prune(batch=7, max_batches=2)
        rest = retention.prune(batch=7)
        assert one.batches == 2
        assert one.events + rest.events == 50
        if database_url.startswith("sqlite"):
            assert (one.events, one.partitions) == (14, ())
            assert (rest.batches, rest.partitions) == (-(-36 // 7), ())
        else:
            assert (one.events, one.partitions) == (0, ())  # March's keys, not all yet
            assert rest.partitions == ("event_2026_03",)
            assert rest.batches == -(-(30 - 14) // 7) + -(-20 // 7)
        assert retention.prune(batch=7) == replace(rest, events=0, batches=0, partitions=())


def test_counting_stays_exact_after_a_prune(database_url):
    """A return kept in the address row still counts: the next bounces block at max_returns
    as if nothing had been deleted."""
    clock = Clock()
    with open_store(database_url, clock, max_returns=3) as sup:
        bounce(sup, clock, "a@example.com", 1)
        bounce(sup, clock, "a@example.com", 2)
        clock.move(days=500)
        assert sup.prune().events == 2
        assert sup.show("a@example.com")["address"]["returns"] == 2
        bounce(sup, clock, "a@example.com", 3)
        assert sup.check("a@example.com").state == "blocked"


def test_keep_all_by_default_and_a_horizon_inside_the_window_is_refused(database_url):
    clock = Clock()
    with open_store(database_url, clock, keep="0") as sup:
        bounce(sup, clock, "a@example.com", 1)
        clock.move(days=5000)
        assert sup.prune().before is None
        assert len(event_times(sup, "a@example.com")) == 1
    with (
        open_store(database_url, clock, keep="30d", returns_window_days=30) as sup,
        pytest.raises(ConfigError, match="returns_window_days"),
    ):
        sup.prune()


def test_the_worker_prunes_a_batch_per_pass(database_url):
    clock = Clock()
    with open_store(database_url, clock, max_returns=1000) as sup:
        fill(sup, clock, days=410)
        worker = Worker(SendingLog(sup, RetrySettings()), None)
        first = worker.run_once()
        assert first.pruned == 10
        assert first.busy
        assert worker.run_once().pruned == 0


def test_db_prune_command(tmp_path):
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    old = datetime.now(UTC) - timedelta(days=800)
    with Suppressions.open(url) as sup:
        bounce(sup, lambda: old, "a@example.com", 1)
        bounce(sup, lambda: datetime.now(UTC), "a@example.com", 2)

    def run(*args):
        env = {"BOUNCED_STORE_KEEP_EVENTS": "400d", "PATH": "/usr/bin:/bin"}
        cmd = [sys.executable, "-m", "bounced", "--database-url", url, "db", "prune", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 events from before" in dry.stderr + dry.stdout
    assert "would be deleted" in dry.stderr + dry.stdout
    done = run()
    assert "1 events from before" in done.stderr + done.stdout
    with Suppressions.open(url) as sup:
        assert len(sup.show("a@example.com")["events"]) == 1
        assert sup.show("a@example.com")["address"]["returns"] == 2
