"""`bounced worker --spool` as a real process, ingesting a spool that a real listener (or
the spool itself) wrote, on SQLite and PostgreSQL: every acknowledged message is
ingested exactly once, however many workers share the spool and however they stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.dsn import make_dsn
from helpers.listener import WAIT, Server, burst, events, eventually

from bounced.errors import UnknownAddress
from bounced.listener.inbox import Inbox
from bounced.listener.spool import Envelope, Spool
from bounced.suppressions import Suppressions

RCPT = ("bounces@b.example.com",)


@pytest.fixture
def store(database_url):
    with Suppressions.open(database_url) as sup:
        yield sup


def _env(srv: Server) -> dict[str, str]:
    return srv.env | {"BOUNCED_DATABASE_URL": srv.url}


def _once(spool: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "bounced", "worker", "--once", "--spool-dir", str(spool)]
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=spool.parent, timeout=120
    )


class Worker:
    """A `bounced worker --spool-dir DIR` loop, its stderr (JSON event lines) in a file."""

    def __init__(self, spool: Path, env: dict[str, str], log: Path) -> None:
        argv = [sys.executable, "-m", "bounced", "worker", "--spool-dir", str(spool)]
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stderr=out, env=env, cwd=spool.parent)
        eventually(lambda: b"worker " in log.read_bytes(), "worker started")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(WAIT)


def _ingested(*logs: Path) -> list[str]:
    """Spool ids of the `ingested` events in JSON log files (listener's and workers')."""
    ids = []
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line)["event"] == "ingested":
                ids.append(json.loads(line)["id"])
    return ids


def test_a_worker_process_ingests_what_a_listener_spooled(database_url, tmp_path, store):
    srv = Server(database_url, tmp_path, {"BOUNCED_LISTENER_WORKER": "false"}).start()
    for i in range(5):
        srv.send(make_dsn(f"gone{i}@example.org", original_id=f"<o{i}@s>"))
    srv.send(b"From: a@example.com\r\nSubject: Re: hello\r\n\r\nThanks, but stop.\r\n")
    assert srv.stop() == 0
    files = len(srv.folder("new"))  # segments: messages close in time share one
    assert files >= 1 and srv.folder("done") == []
    with pytest.raises(UnknownAddress):
        store.show("gone0@example.org")  # the listener did not ingest

    done = _once(srv.spool, _env(srv))
    assert done.returncode == 0, done.stderr
    assert f"spool: 6 messages ingested from {files} files" in done.stderr
    for i in range(5):
        assert [e["source"][:5] for e in events(store, f"gone{i}@example.org")] == ["smtp:"]
    assert [m["subject"] for m in Inbox(store).list()] == ["Re: hello"]
    assert srv.folder("new") == srv.folder("cur") == srv.folder("tmp") == []
    assert len(srv.folder("done")) == files

    again = _once(srv.spool, _env(srv))
    assert again.returncode == 0 and "spool: 0 messages ingested" in again.stderr
    assert len(events(store, "gone0@example.org")) == 1


def _fill(spool: Spool, files: range, per_file: int) -> dict[str, str]:
    """Spool files of distinct DSNs, as the listener's group commit writes them;
    {spool id: recipient}."""
    written = {}
    for f in files:
        batch = []
        for m in range(per_file):
            rcpt = f"u{f}x{m}@example.org"
            raw = make_dsn(rcpt, original_id=f"<o{f}x{m}@s>", message_id=f"<d{f}x{m}@x>")
            batch.append((raw, Envelope("<>", RCPT, "127.0.0.1")))
        rcpts = [f"u{f}x{m}@example.org" for m in range(per_file)]
        ids = spool.append(batch)
        spool.seal()
        written |= dict(zip(ids, rcpts, strict=True))
    return written


def _names(spool: Spool, folder: str) -> set[str]:
    return set(os.listdir(spool.dir(folder)))


def test_a_listener_and_worker_processes_share_one_spool(database_url, tmp_path, store):
    """The listener's worker and two `bounced worker --spool` claim from one new/ (a
    backlog found at start, and a burst over SMTP): each message is ingested by exactly
    one of them, counted in their logs, not only in the store (whose keys would hide
    a second ingest)."""
    written = _fill(Spool(tmp_path / "spool"), range(60), 3)
    srv = Server(database_url, tmp_path).start()
    workers = [Worker(srv.spool, _env(srv), tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        acked = burst(srv, 60)
        for rcpt in [*written.values(), *acked]:
            eventually(lambda rcpt=rcpt: events(store, rcpt), f"{rcpt} ingested")
    finally:
        assert [worker.stop() for worker in workers] == [0, 0]
        assert srv.stop() == 0
    assert len(acked) == 60
    ids = _ingested(srv.log, *(worker.log for worker in workers))
    assert len(ids) == len(set(ids)) == len(written) + len(acked)
    for rcpt in [*written.values(), *acked]:
        assert len(events(store, rcpt)) == 1
    assert srv.folder("new") == srv.folder("cur") == srv.folder("tmp") == []


def test_sigterm_and_kill_leave_the_spool_whole(database_url, tmp_path, store):
    """SIGTERM: the file in hand is finished, the rest stays in new/, untouched. A kill
    mid-file: the file is taken back on the next start. Then all counted exactly once."""
    spool = Spool(tmp_path / "spool")
    written = _fill(spool, range(40), 5)
    files = _names(spool, "new")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env |= {"BOUNCED_DATABASE_URL": database_url, "BOUNCED_LISTENER_LOG_FORMAT": "json"}

    worker = Worker(spool.root, env, tmp_path / "term.log")
    eventually(lambda: _names(spool, "done"), "a file ingested")
    assert worker.stop() == 0
    assert _names(spool, "cur") == _names(spool, "tmp") == set()
    done, waiting = _names(spool, "done"), _names(spool, "new")
    assert done | waiting == files and not done & waiting
    for sid, rcpt in written.items():
        finished = sid.rpartition("-")[0] in done
        try:
            assert len(events(store, rcpt)) == (1 if finished else 0)
        except UnknownAddress:
            assert not finished

    written |= _fill(spool, range(40, 80), 5)  # work left for the next worker, in any case
    files = _names(spool, "new") | done
    worker = Worker(spool.root, env, tmp_path / "kill.log")
    eventually(lambda: len(_names(spool, "done")) > len(done), "another file ingested")
    worker.stop(signal.SIGKILL)
    finished = _once(spool.root, env)
    assert finished.returncode == 0, finished.stderr
    assert _names(spool, "done") == files
    assert _names(spool, "new") == _names(spool, "cur") == _names(spool, "tmp") == set()
    for rcpt in written.values():
        assert len(events(store, rcpt)) == 1
