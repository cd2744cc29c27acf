"""Exact counting under concurrency: 4 processes ingesting overlapping bounces at once
end in the same state as one process ingesting them once."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time

from helpers.dsn import Rcpt, delayed, make_dsn, sender_side, soft

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
