"""Work per message stays bounded whatever a notice holds (issue 3: no input may
cost minutes). A regression here shows as a test that runs for minutes."""

from __future__ import annotations

import subprocess
import sys

from helpers.dsn import make_dsn

import bounced
from bounced.dsn.mime import CUT_PROBLEM, MAX_PARSE_BYTES, TRACE_FIELDS
from bounced.dsn.text import MAX_RECIPIENTS
from bounced.rules import load

HEAD = (
    b"From: MAILER-DAEMON@mx.example.com\n"
    b"To: sender@example.org\n"
    b"Subject: Undelivered Mail Returned to Sender\n\n"
    b"The following addresses failed:\n\n"
)


def test_a_notice_naming_forty_thousand_recipients_gives_the_first_thousand() -> None:
    raw = HEAD + b"".join(b"user%d@example.net\n" % i for i in range(40_000))
    report = bounced.parse(raw)
    assert [b.recipient for b in report.bounces][:2] == ["user0@example.net", "user1@example.net"]
    assert len(report.bounces) == MAX_RECIPIENTS


def test_one_address_named_on_every_line_is_one_row() -> None:
    report = bounced.parse(HEAD + b"user@example.net: 550 no such user\n" * 60_000)
    assert [(b.recipient, b.reason) for b in report.bounces] == [
        ("user@example.net", bounced.Reason.USER_UNKNOWN)
    ]


def _with_header_lines(line: bytes, count: int) -> bytes:
    """A DSN whose header block holds `count` copies of `line` (a field with a
    continuation line) after its first field: several megabytes of header."""
    first, _, rest = make_dsn("user@example.net").partition(b"\n")
    return first + b"\n" + line * count + rest


_RECEIVED = b"Received: from relay.example.org (relay.example.org [192.0.2.1])\n\tby mx; id 1\n"


def test_two_hundred_thousand_received_lines_before_the_report_still_give_its_row() -> None:
    raw = _with_header_lines(_RECEIVED, 200_000)
    assert len(raw) > 10 * MAX_PARSE_BYTES
    report = bounced.parse(raw)
    assert [(b.recipient, b.reason) for b in report.bounces] == [
        ("user@example.net", bounced.Reason.USER_UNKNOWN)
    ]
    assert [p for p in report.problems if "200000 trace fields" in p], report.problems


def test_trace_fields_are_read_as_ever_when_the_message_fits() -> None:
    raw = _with_header_lines(_RECEIVED, 100)
    assert bounced.parse(raw).problems == ()


def test_no_rules_file_looks_for_a_trace_field() -> None:
    """The fields left out past the limit are fields no layer reads."""
    rules = load()
    named = {h for f in rules.families for h in f.headers}
    named |= {
        h for key in ("recipient_headers", "unsubscribe_headers") for h in rules.complaint[key]
    }
    named |= set(rules.autoreply["headers"])
    assert named and not named & TRACE_FIELDS


def test_a_header_too_long_even_without_its_trace_fields_is_a_cut_said_aloud(tmp_path) -> None:
    raw = _with_header_lines(b"X-Junk: " + b"j" * 60 + b"\n", 40_000)
    report = bounced.parse(raw)
    assert report.bounces == ()
    assert CUT_PROBLEM in report.problems
    path = tmp_path / "long.eml"
    path.write_bytes(raw)
    done = subprocess.run(
        [sys.executable, "-m", "bounced", "parse", "--format", "ndjson", str(path)],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert f"{path}: {CUT_PROBLEM}, and no row found there" in done.stderr
