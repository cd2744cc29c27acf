"""`bounced parse --jobs N` leaves no process behind: not when it finishes, not on
Ctrl-C (SIGINT to its process group, as a terminal sends it, or to the command
alone), not when the reader of its output goes away (`| head -1`), not even when
the command itself is killed. Real commands, real signals; what is alive is read
from /proc (every process of the command's session: its workers, the fork server
and multiprocessing's resource tracker are all in it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.dsn import make_dsn

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

#: Enough work that the command is still parsing when it is interrupted.
_MESSAGES = 6000


@pytest.fixture(scope="module")
def mbox(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("jobs") / "bounces.mbox"
    with path.open("wb") as out:
        for n in range(_MESSAGES):
            out.write(b"From MAILER-DAEMON Tue Dec  1 12:00:00 2026\n")
            out.write(make_dsn(f"user{n}@example.net") + b"\n")
    return path


def _session(sid: int) -> dict[int, str]:
    """pid -> state of every process of session `sid` that has not exited."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, _pgrp, session = stat.rpartition(")")[2].split()[:4]
        if int(session) == sid and state not in ("Z", "X"):  # a zombie has exited
            found[int(entry)] = state
    return found


def _gone(sid: int, within: float = 15.0) -> dict[int, str]:
    """The session's processes still alive after `within` seconds ({} when none)."""
    deadline = time.monotonic() + within
    while (alive := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _start(mbox: Path, *jobs: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bounced", "parse", "--format", "ndjson", *jobs, str(mbox)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _running(proc: subprocess.Popen[bytes]) -> dict[int, str]:
    """Once rows come out (so the workers parse), the session's processes."""
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b'{"file": ')
    return _session(proc.pid)


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("to_group", [True, False], ids=["group", "parent alone"])
def test_ctrl_c_stops_every_worker(mbox, to_group) -> None:
    proc = _start(mbox, "--jobs", "2")
    during = _running(proc)
    # The command (one of the two jobs), the fork server, the resource tracker, a worker.
    assert len(during) >= 4, during
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    code, err = _finish(proc)
    assert code == 130, err
    assert b"Traceback" not in err, err
    assert _gone(proc.pid) == {}


def test_a_reader_that_goes_away_stops_every_worker(mbox) -> None:
    proc = _start(mbox, "-j2")
    _running(proc)
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -1`: the next write meets a broken pipe
    code, err = _finish(proc)
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    assert code != 0
    assert _gone(proc.pid) == {}


def test_a_killed_command_takes_its_workers_along(mbox) -> None:
    proc = _start(mbox, "--jobs", "3")
    during = _running(proc)
    assert len(during) >= 5, during  # two workers
    os.kill(proc.pid, signal.SIGKILL)
    code, _ = _finish(proc)
    assert code == -signal.SIGKILL
    assert _gone(proc.pid) == {}


def test_a_finished_run_leaves_nothing_running(mbox) -> None:
    proc = _start(mbox, "--jobs", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count(b"\n") == _MESSAGES
    assert _gone(proc.pid) == {}
