"""`bounced parse --jobs N` leaves no process behind: not when it finishes, not on
Ctrl-C (SIGINT to its process group, as a terminal sends it, or to the command
alone), not when the reader of its output goes away (`| head -1`), not even when
the command itself is killed. Real commands, real signals; what is alive is read
from /proc (every process of the command's session: its workers, the fork server
and multiprocessing's resource tracker are all in it). Workers are forked, or come from a
fork server when the command runs a thread: both ways are tested."""

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


#: `bounced parse` with a thread running beside it, as a progress bar's refresher
#: would be: the workers then come from a fork server instead of a fork.
_THREADED = (
    "import sys, threading, time; from bounced.cli import main;"
    " threading.Thread(target=time.sleep, args=(600,), daemon=True).start();"
    " sys.argv[0] = 'bounced'; main()"
)
#: Processes of the command's session beside the command and its workers: none when
#: they are forked; with a fork server, it and multiprocessing's resource tracker.
_HELPERS = {"fork": 0, "forkserver": 2}


@pytest.fixture(params=sorted(_HELPERS))
def start(request, mbox):
    """Starts `bounced parse --format ndjson ARGS MBOX` in a session of its own, its
    workers forked or from a fork server; gives the start and the helper count."""

    def run(*jobs: str) -> subprocess.Popen[bytes]:
        command = ["-m", "bounced"] if request.param == "fork" else ["-c", _THREADED]
        argv = [sys.executable, *command, "parse", "--format", "ndjson", *jobs, str(mbox)]
        return _popen(argv)

    return run, _HELPERS[request.param]


def _popen(argv: list[str]) -> subprocess.Popen[bytes]:
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
def test_ctrl_c_stops_every_worker(start, to_group) -> None:
    run, helpers = start
    proc = run("--jobs", "2")
    during = _running(proc)
    # The command (one of the two jobs), a worker, and the helpers.
    assert len(during) >= 2 + helpers, during
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    code, err = _finish(proc)
    assert code == 130, err
    assert b"Traceback" not in err, err
    assert _gone(proc.pid) == {}


def test_a_reader_that_goes_away_stops_every_worker(start) -> None:
    run, _ = start
    proc = run("-j2")
    _running(proc)
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -1`: the next write meets a broken pipe
    code, err = _finish(proc)
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    assert code != 0
    assert _gone(proc.pid) == {}


def test_a_killed_command_takes_its_workers_along(start) -> None:
    run, helpers = start
    proc = run("--jobs", "3")
    during = _running(proc)
    assert len(during) >= 3 + helpers, during  # two workers
    os.kill(proc.pid, signal.SIGKILL)
    code, _ = _finish(proc)
    assert code == -signal.SIGKILL
    assert _gone(proc.pid) == {}


def test_a_finished_run_leaves_nothing_running(start) -> None:
    run, _ = start
    proc = run("--jobs", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count(b"\n") == _MESSAGES
    assert _gone(proc.pid) == {}
