"""`bounced parse` run as a real process over real files: formats, exit codes, inputs, jobs."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bounced.cli.parse import parse_rows, rows_of
from bounced.cli.terminal import Feedback
from bounced.dsn import Kind, Report
from bounced.inputs.batch import Parsed
from bounced.inputs.sources import Message

COLUMNS = [
    "file",
    "recipient",
    "kind",
    "class",
    "reason",
    "final_recipient",
    "status",
    "reply_code",
    "diagnostic",
    "remote_mta",
    "reporting_mta",
    "original_message_id",
    "feedback_type",
    "detector",
]
CONSOLE_SCRIPT = Path(sys.executable).with_name("bounced")


def dsn(recipient: str, n: int = 1) -> bytes:
    """A plain, well-formed RFC 3464 report of a 5.1.1 failure for `recipient`."""
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
Date: Mon, 3 Jun 2024 10:00:00 +0000
Message-ID: <dsn-{n}@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--BOUNDARY
Content-Type: text/rfc822-headers

From: sender@example.com
To: {recipient}
Subject: Hello
Message-ID: <original-{n}@example.com>

--BOUNDARY--
""".encode()


PERSONAL = b"From: friend@example.org\nTo: me@example.com\nSubject: lunch?\n\nSee you at noon.\n"


def mbox(*messages: bytes) -> bytes:
    return b"".join(b"From MAILER-DAEMON Mon Jun  3 10:00:00 2024\n" + m + b"\n" for m in messages)


def run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "bounced", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        env=env,
        check=False,
    )


def ndjson(stdout: bytes) -> list[dict[str, str]]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


def assert_clean(result: subprocess.CompletedProcess[bytes], code: int = 0) -> None:
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    assert result.returncode == code, result.stderr.decode()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def facts(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(row["file"], row["recipient"], row["kind"], row["status"]) for row in rows]


@pytest.mark.parametrize("launcher", ["console script", "python -m"])
def test_a_dsn_gives_one_row_with_the_documented_fields(tmp_path: Path, launcher: str) -> None:
    path = write(tmp_path / "dsn.eml", dsn("user@example.org"))
    if launcher == "console script":
        result = subprocess.run([CONSOLE_SCRIPT, "parse", path], capture_output=True, check=False)
    else:
        result = run("parse", str(path))
    assert_clean(result)
    [row] = ndjson(result.stdout)  # ndjson is the default when stdout is a pipe
    assert list(row) == COLUMNS
    assert (row["file"], row["recipient"], row["kind"]) == (str(path), "user@example.org", "failed")
    assert (row["class"], row["status"]) == ("hard", "5.1.1")


def test_messages_that_are_not_bounces_give_rows_only_with_all(tmp_path: Path) -> None:
    path = write(tmp_path / "personal.eml", PERSONAL)
    assert_clean(quiet := run("parse", str(path)))
    assert quiet.stdout == b""
    assert_clean(listed := run("parse", "--all", str(path)))
    assert [(row["file"], row["kind"]) for row in ndjson(listed.stdout)] == [(str(path), "")]


def test_json_and_csv_hold_the_same_rows_as_ndjson(tmp_path: Path) -> None:
    write(tmp_path / "a.eml", dsn("a@example.org", 1))
    write(tmp_path / "b.eml", PERSONAL)
    write(tmp_path / "c.mbox", mbox(dsn("c1@example.org", 2), dsn("c2@example.org", 3)))
    outputs = {
        fmt: run("parse", "--all", "-f", fmt, str(tmp_path)) for fmt in ("ndjson", "json", "csv")
    }
    for result in outputs.values():
        assert_clean(result)
    rows = ndjson(outputs["ndjson"].stdout)
    assert len(rows) >= 4
    assert json.loads(outputs["json"].stdout) == rows
    reader = csv.DictReader(io.StringIO(outputs["csv"].stdout.decode(), newline=""))
    assert reader.fieldnames == COLUMNS
    assert list(reader) == rows


def test_table_format_shows_the_recipient(tmp_path: Path) -> None:
    path = write(tmp_path / "dsn.eml", dsn("user@example.org"))
    wide = {**os.environ, "COLUMNS": "200"}  # rich folds long values to fit the width
    result = run("parse", "--format", "table", str(path), env=wide)
    assert_clean(result)
    assert "user@example.org" in result.stdout.decode()


def test_mbox_on_stdin_and_maildir_entries_are_named(tmp_path: Path) -> None:
    piped = run("parse", "-", stdin=mbox(dsn("one@example.org", 1), dsn("two@example.org", 2)))
    assert_clean(piped)
    assert facts(ndjson(piped.stdout)) == [
        ("-#1", "one@example.org", "failed", "5.1.1"),
        ("-#2", "two@example.org", "failed", "5.1.1"),
    ]
    for part in ("new", "tmp"):
        (tmp_path / "Maildir" / part).mkdir(parents=True)
    entry = write(tmp_path / "Maildir" / "cur" / "1717408800.1.host:2,S", dsn("md@example.org"))
    result = run("parse", str(tmp_path / "Maildir"))
    assert_clean(result)
    assert facts(ndjson(result.stdout)) == [(str(entry), "md@example.org", "failed", "5.1.1")]


def test_unreadable_inputs_exit_1_named_on_stderr_and_the_rest_is_parsed(tmp_path: Path) -> None:
    good = write(tmp_path / "dsn.eml", dsn("user@example.org"))
    missing = tmp_path / "missing.eml"
    result = run("parse", str(missing), str(good))
    assert_clean(result, 1)
    assert f"{missing}: No such file or directory" in result.stderr.decode()
    assert [row["recipient"] for row in ndjson(result.stdout)] == ["user@example.org"]


@pytest.mark.parametrize(
    "args",
    [
        ["parse"],
        ["parse", "-f", "xml", "x"],
        ["parse", "--jobs", "-1", "x"],
        ["parse", "--nope", "x"],
        ["nope"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert_clean(run(*args), 2)


def test_garbage_of_every_kind_never_gives_a_traceback(tmp_path: Path) -> None:
    rand = random.Random(3)
    garbage = tmp_path / "garbage"
    write(garbage / "empty", b"")
    write(garbage / "nul.eml", b"\x00" * 4096)
    write(garbage / "one-long-line", b"Subject: " + b"x" * 2_000_000)
    write(garbage / "only-from-line", b"From ")
    write(garbage / "truncated.eml", dsn("cut@example.org")[:700])
    write(garbage / "bad-mime.eml", b'Content-Type: multipart/report; boundary="\n\n--\n--\n')
    write(garbage / os.fsdecode(b"name-\xff\xfe.eml"), PERSONAL)
    write(garbage / "ünïcode-näme.eml", PERSONAL)
    for n in range(20):
        write(garbage / "random" / f"{n}.bin", rand.randbytes(rand.randrange(1, 50_000)))
    result = run("parse", "--all", str(garbage))
    # The one message cut at the read limit without a row in what was read is said.
    assert_clean(result, code=1)
    (said,) = result.stderr.decode().splitlines()
    assert said.startswith(f"bounced: {garbage / 'one-long-line'}: message longer than")
    assert len({row["file"] for row in ndjson(result.stdout)}) == 28


def test_rows_are_utf8_whatever_the_locale_says(tmp_path: Path) -> None:
    path = write(tmp_path / "rückläufer.eml", PERSONAL)
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    result = run("parse", "--all", "-f", "csv", str(path), env=env)
    assert_clean(result)
    assert str(path) in result.stdout.decode("utf-8")


def test_two_jobs_give_the_same_rows_in_the_same_order_as_one(tmp_path: Path) -> None:
    for n in range(150):  # several chunks per worker
        write(tmp_path / f"{n:03}.eml", dsn(f"user{n}@example.org", n))
    write(tmp_path / "box.mbox", mbox(*(dsn(f"box{n}@example.org", n) for n in range(30))))
    write(tmp_path / "personal.eml", PERSONAL)
    args = ["parse", "--all", str(tmp_path / "missing"), str(tmp_path)]
    one, two = run(*args, "--jobs", "1"), run(*args, "--jobs", "2")
    assert_clean(one, 1)
    assert_clean(two, 1)
    assert two.stdout == one.stdout
    rows = ndjson(one.stdout)
    assert [row["recipient"] for row in rows[:150]] == [f"user{n}@example.org" for n in range(150)]
    assert [row["file"] for row in rows[150:180]] == [
        f"{tmp_path}/box.mbox#{n}" for n in range(1, 31)
    ]


def test_a_bounce_without_any_recipient_still_gets_a_row() -> None:
    # No parser output has this shape today; the row keeps such a bounce in sight.
    report = Report(kind=Kind.FAILED, detector="text")
    parsed = Parsed(Message("x.eml", b""), report)
    feedback = Feedback(progress=False, stderr=io.StringIO())
    [row] = parse_rows([rows_of(False, parsed)], feedback)
    expected = {"file": "x.eml", "kind": "failed", "detector": "text"}
    assert row == dict.fromkeys(COLUMNS, "") | expected
