"""The store commands as real processes, on SQLite and PostgreSQL: exit codes, messages, rows."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.dsn import make_dsn, sender_side, soft

from bounced.config import Settings
from bounced.db.database import SCHEMA_REVISION
from bounced.db.store import Store


@pytest.fixture
def bounced(database_url, tmp_path):
    """Run `bounced --database-url URL ARGS...` in a clean environment, in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env.pop("PYTHONUNBUFFERED", None)

    def run(*args, stdin=None, env_extra=None, url=database_url):
        cmd = [sys.executable, "-m", "bounced", *(["--database-url", url] if url else []), *args]
        return subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env | (env_extra or {}),
            timeout=120,
        )

    return run


def rows(result):
    assert "Traceback" not in result.stderr, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.fixture
def inbox(tmp_path):
    """A directory of returned messages: hard, soft (one address returns 5 times),
    sender-side, a person's reply, and a complaint-free mix."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "hard.eml").write_bytes(make_dsn("Gone@Example.com", "left@example.org"))
    for i in range(5):
        raw = make_dsn(soft("full@example.net"), original_id=f"<{i}@x>", message_id=f"<b{i}@x>")
        (folder / f"full-{i}.eml").write_bytes(raw)
    (folder / "rep.eml").write_bytes(make_dsn(sender_side("someone@gmail.com")))
    (folder / "reply.eml").write_bytes(b"From: a@example.com\nSubject: Re: hi\n\nThanks!\n")
    return folder


def test_ingest_then_list_check_and_show(bounced, inbox, tmp_path):
    # Parsed by a worker process while the command records; the rerun parses itself.
    first = bounced("ingest", "-j", "2", str(inbox), str(tmp_path / "missing.mbox"))
    assert first.returncode == 1  # one input could not be read; the rest was recorded
    assert "missing.mbox" in first.stderr
    assert "8 messages, 8 rows, 3 new blocks, 0 duplicates, 1 not bounces" in first.stderr
    again = bounced("ingest", str(inbox))
    assert again.returncode == 0
    assert "0 new blocks, 8 duplicates" in again.stderr

    listed = rows(bounced("list", "--status", "blocked", "--format", "csv"))
    assert [(r["address"], r["blocked_reason"], r["returns"]) for r in listed] == [
        ("full@example.net", "returns", "5"),
        ("gone@example.com", "hard", "1"),
        ("left@example.org", "hard", "1"),
    ]
    ok = bounced("check", "someone@gmail.com", "new@example.com")
    assert ok.returncode == 0
    blocked = bounced("check", "GONE@example.com", "new@example.com", "--format", "csv")
    assert blocked.returncode == 1
    assert [r["verdict"] for r in rows(blocked)] == ["blocked", "send"]

    shown = json.loads(bounced("show", "full@example.net", "--format", "json").stdout)
    assert (shown["state"], shown["returns"], len(shown["timeline"])) == ("blocked", 5, 5)
    stats = rows(bounced("stats", "--format", "csv"))
    assert {"group": "reason", "key": "hard", "count": "2"} in stats
    sender = rows(bounced("deliverability", "--format", "csv"))
    assert [(r["domain"], r["reason"]) for r in sender] == [("gmail.com", "blocked")]


def test_check_file_reports_bad_lines_and_streams(bounced, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a@example.com\n\n# a comment\nnot an address\n<B@Example.com>\n")
    result = bounced("check", "--file", str(listing), "--format", "ndjson")
    assert result.returncode == 1
    assert "list.txt:4: invalid address" in result.stderr
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["verdict"] for v in verdicts] == ["send", "invalid", "send"]
    piped = bounced("check", "--file", "-", stdin="c@example.com\n")
    assert piped.returncode == 0
    assert json.loads(piped.stdout)["verdict"] == "send"


def test_admin_actions_and_their_errors(bounced, inbox, tmp_path):
    bounced("ingest", str(inbox))
    unmark = bounced("--actor", "alice", "unmark", "gone@example.com", "nobody@example.com")
    assert unmark.returncode == 1
    assert "not in the store: nobody@example.com" in unmark.stderr
    assert "Traceback" not in unmark.stderr
    assert bounced("check", "gone@example.com").returncode == 0
    shown = json.loads(bounced("show", "gone@example.com", "--format", "json").stdout)
    assert shown["timeline"][-1]["kind"] == "unmark"

    listing = tmp_path / "block.txt"
    listing.write_text("x@example.com\nbroken@\ny@example.com\n")
    block = bounced("block", "--file", str(listing), "--note", "asked us")
    assert (block.returncode, "block.txt:2" in block.stderr) == (1, True)
    assert bounced("check", "x@example.com", "y@example.com").returncode == 1

    assert bounced("former-employee", "left@example.org").returncode == 0
    state = rows(bounced("list", "--status", "former_employee", "--format", "csv"))
    assert [r["address"] for r in state] == ["left@example.org"]

    allow_file = tmp_path / "allow.txt"
    allow_file.write_text("@example.net\n@\n")
    allowed = bounced("allow", "--file", str(allow_file))
    assert (allowed.returncode, "allow.txt:2" in allowed.stderr) == (1, True)
    assert bounced("check", "full@example.net").returncode == 0

    refused = bounced("delete", "x@example.com")  # not a terminal: must say --yes
    assert refused.returncode == 2
    assert bounced("delete", "--yes", "x@example.com").returncode == 0
    gone = bounced("delete", "--yes", "x@example.com")
    assert gone.returncode == 1
    assert "not in the store" in gone.stderr


def test_selections_and_exports(bounced, inbox, tmp_path):
    bounced("ingest", str(inbox))
    assert bounced("selection", "add", "vip", "new@example.com", "gone@example.com").returncode == 0
    added = bounced("selection", "add", "dead", "--where", "--status", "blocked", "--class", "hard")
    assert "added 2 addresses to dead" in added.stderr
    listed = rows(bounced("selection", "list", "--format", "csv"))
    assert [(r["name"], r["members"]) for r in listed] == [("dead", "2"), ("vip", "2")]
    shown = rows(bounced("selection", "show", "vip", "--format", "csv"))
    assert [r["address"] for r in shown] == ["gone@example.com", "new@example.com"]
    bounced("selection", "remove", "vip", "new@example.com")
    out = tmp_path / "dead.csv"
    exported = bounced("selection", "export", "dead", "--output", str(out))
    assert "exported 2 addresses" in exported.stderr
    with out.open() as exported_file:
        assert [r["address"] for r in csv.DictReader(exported_file)] == [
            "gone@example.com",
            "left@example.org",
        ]
    ndjson = bounced("export", "--format", "ndjson", "--selection", "vip", "--min-returns", "1")
    assert [json.loads(line)["address"] for line in ndjson.stdout.splitlines()] == [
        "gone@example.com"
    ]
    unknown = bounced("selection", "show", "nope")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "bounced: no selection named 'nope'")


def test_policy_apply_and_config_layers(bounced, inbox, tmp_path, database_url):
    bounced("ingest", str(inbox))
    config = tmp_path / "strict.toml"
    config.write_text("[policy]\nmax_returns = 2\nsender_reasons = []\n")
    dry = bounced("--config", str(config), "policy", "apply", "--dry-run", "--format", "csv")
    assert "1 addresses would change" in dry.stderr
    assert [r["address"] for r in rows(dry)] == ["someone@gmail.com"]
    env = {"BOUNCED_POLICY_SENDER_REASONS": "", "BOUNCED_DATABASE_URL": database_url}
    applied = bounced("--config", str(config), "policy", "apply", url=None, env_extra=env)
    assert "1 addresses changed" in applied.stderr
    assert bounced("check", "someone@gmail.com").returncode == 0  # 1 return < 2


def test_database_errors_are_one_line(bounced, tmp_path):
    (tmp_path / "garbage.db").write_text("not a database")
    for url in (
        "postgresql://nobody@127.0.0.1:1/none",
        "nonsense://",
        "sqlite:////no/such/dir/x.db",
        f"sqlite:///{tmp_path / 'garbage.db'}",
    ):
        result = bounced("list", url=url)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("bounced: ")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\nmax_returns = 'five'\n")
    result = bounced("--config", str(bad), "list")
    assert (result.returncode, "policy.max_returns" in result.stderr) == (2, True)


def test_db_upgrade(bounced):
    result = bounced("db", "upgrade")
    assert result.returncode == 0
    assert result.stderr.strip() == f"bounced: database schema at revision {SCHEMA_REVISION}"


def test_killed_ingest_finishes_on_rerun_without_double_counting(bounced, tmp_path, database_url):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):
        raw = make_dsn(soft(f"u{i % 300}@example.com"), original_id=f"<{i}@x>", message_id=f"<{i}>")
        (folder / f"{i:05}.eml").write_bytes(raw)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    cmd = [sys.executable, "-m", "bounced", "--database-url", database_url, "ingest", str(folder)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    store = Store.open(Settings(database_url=database_url))
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(r["returns"] for r in store.rows()):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rerun = bounced("ingest", str(folder))
        assert rerun.returncode == 0, rerun.stderr
        counts = {r["address"]: (r["returns"], r["state"]) for r in store.rows()}
    finally:
        store.close()
    assert counts == {f"u{n}@example.com": (5, "blocked") for n in range(300)}
