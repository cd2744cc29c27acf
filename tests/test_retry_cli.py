"""The sending-log and retry commands as real processes: sent, retries, smtp test, worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers.dsn import make_dsn, soft
from helpers.net import free_port


@pytest.fixture
def run(tmp_path):
    """`bounced ...` in a fresh directory against a fresh SQLite file; (rc, stdout, stderr).
    (The same calls on PostgreSQL are tested through the Python API: process start-up
    dominates here, and it is the same code.)"""
    env = {**os.environ, "BOUNCED_DATABASE_URL": f"sqlite:///{tmp_path / 'bounced.db'}"}

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        done = subprocess.run(
            [sys.executable, "-m", "bounced", *args],
            env=env,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            timeout=120,
        )
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    run.env = env
    run.cwd = tmp_path
    return run


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_sent_record_list_and_send_time_errors(run, tmp_path):
    raw = tmp_path / "m.eml"
    raw.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    rc, out, err = run(
        "sent", "record", "a@example.org", "--message-id", "<m1@s>", "--raw", str(raw)
    )
    assert rc == 0, err
    rc, out, _ = run(
        "sent", "record", "gone@example.org", "--message-id", "m2@s", "--failed",
        "--error", "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
        "-f", "ndjson",
    )  # fmt: skip
    assert rc == 0 and ndjson(out)[0]["status"] == "bounced_hard"
    assert run("check", "gone@example.org")[0] == 1  # blocked by the policy
    run(
        "sent",
        "record",
        "full@example.org",
        "--message-id",
        "m3@s",
        "--error",
        "452 4.2.2 Mailbox full",
    )
    rc, out, _ = run("sent", "list", "--status", "retrying", "-f", "ndjson")
    assert [(r["address"], r["reason"]) for r in ndjson(out)] == [
        ("full@example.org", "mailbox_full")
    ]
    rc, out, _ = run("sent", "list", "--domain", "EXAMPLE.org", "-f", "csv")
    assert out.splitlines()[0].startswith("id,address,message_id") and len(out.splitlines()) == 4
    assert run("sent", "record", "x@example.org", "--message-id", "m4@s", "--failed")[0] == 2


def test_retries_list_show_cancel(run):
    run("sent", "record", "full@example.org", "--message-id", "m1@s")
    rc, out, err = run(
        "ingest", "-", stdin=make_dsn(soft("full@example.org"), original_id="<m1@s>")
    )
    assert rc == 0, err
    run("worker", "--once")
    rc, out, _ = run("retries", "list", "-f", "ndjson")
    (plan,) = ndjson(out)
    assert (plan["status"], plan["message_id"], plan["attempt"]) == ("scheduled", "m1@s", 0)
    rc, out, _ = run("retries", "show", str(plan["id"]), "-f", "json")
    assert json.loads(out)["sent"]["address"] == "full@example.org"
    rc, _, err = run("retries", "cancel", str(plan["id"]), "12345")
    assert rc == 1 and "cancelled 1 plan" in err and "not an open plan: 12345" in err
    rc, out, _ = run("retries", "list", "--status", "cancelled", "-f", "ndjson")
    assert len(ndjson(out)) == 1
    assert run("retries", "show", "999")[0] == 1


def test_smtp_test_says_what_failed(run):
    port = free_port()
    rc, out, _ = run("smtp", "test", "--port", str(port), "--timeout", "5s")
    assert rc == 1
    assert out.startswith("FAIL connect:") and "connection refused" in out
    rc, out, _ = run("smtp", "test", "--security", "tls-maybe")
    assert rc == 1 and "FAIL settings: security must be one of" in out


def test_worker_loop_stops_on_sigterm(run):
    worker = subprocess.Popen(
        [sys.executable, "-m", "bounced", "worker", "--dispatch", "pull"],
        env=run.env,
        cwd=run.cwd,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "started" in worker.stderr.readline()
    worker.send_signal(signal.SIGTERM)
    rest = worker.communicate(timeout=60)[1]
    assert worker.returncode == 0 and "worker stopped" in rest
