"""SQLite writers take turns on an flock of `<file>-writer` (bounced.db.database): a
writer waits for its turn without polling, and a turn held past the database timeout
does not stop it (the database's own lock decides)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta

from helpers.dsn import Rcpt, make_dsn

from bounced.config import Settings
from bounced.suppressions import Suppressions

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)


def hold_turn(db):
    """Another process holding the turn (the flock only: the database is free)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"{db}-writer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_writer_waits_for_the_turn_another_process_holds(tmp_path):
    db = tmp_path / "bounced.db"
    with Suppressions.open(f"sqlite:///{db}") as sup:
        holder = hold_turn(db)
        results = []
        writer = threading.Thread(
            target=lambda: results.append(sup.ingest(make_dsn(Rcpt("a@example.com"))))
        )
        writer.start()
        try:
            writer.join(0.5)
            assert writer.is_alive() and not results  # waiting for its turn
            assert list(sup.list()) == []
        finally:
            holder.communicate("")
        writer.join(10)
        assert results[0].rows[0].address == "a@example.com"
        assert sup.show("a@example.com")["address"]["state"] == "blocked"


def test_a_turn_held_past_the_database_timeout_is_gone_around(tmp_path):
    db = tmp_path / "bounced.db"
    settings = Settings(database_url=f"sqlite:///{db}", database_timeout=timedelta(seconds=1))
    with Suppressions.open(settings) as sup:
        holder = hold_turn(db)
        try:
            result = sup.ingest(make_dsn(Rcpt("b@example.com")))
            assert holder.poll() is None  # the turn was still held
        finally:
            holder.communicate("")
        assert result.rows[0].address == "b@example.com"
        assert sup.show("b@example.com")["address"]["state"] == "blocked"
