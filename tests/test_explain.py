"""`bounced explain`: the account of a parse is the parse's own, whole and true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.dsn import Rcpt, make_dsn

from bounced import parse
from bounced.dsn.explain import explain, render

SAMPLES = sorted(
    (Path(__file__).resolve().parent.parent / "fixtures" / "dsn_samples").glob("*.eml")
)
CONSOLE_SCRIPT = Path(sys.executable).with_name("bounced")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_the_explanation_is_of_the_parse_itself(sample: Path) -> None:
    """Same rows as `parse`; each decided row has one winner, the highest
    candidate, and it is the rule the row names."""
    raw = sample.read_bytes()
    explanation = explain(raw)
    assert explanation.report == parse(raw)
    assert [r.bounce for r in explanation.recipients] == list(explanation.report.bounces)
    for row in explanation.recipients:
        winners = [c for c in row.candidates if c.won]
        if not row.candidates:
            assert row.bounce.rule in ("", "none")
            continue
        (winner,) = winners
        assert winner.priority == max(c.priority for c in row.candidates)
        assert row.bounce.rule.split("+")[0] == winner.rule
        assert [c.priority for c in row.candidates] == sorted(
            (c.priority for c in row.candidates), reverse=True
        )


NOTICE = b"""\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: news@sender.example.com
Subject: Undelivered Mail Returned to Sender

This is the mail system at host mx.example.net.

<kim@mailhost.example.net> (expanded from <kim@example.org>): host
    mailhost.example.net[192.0.2.7] said: 550 5.1.1 unknown user

For further assistance, please send mail to postmaster@mx.example.net
Your message was sent by news@sender.example.com
To leave the list, write to news-request@lists.example.com
"""


def test_every_address_of_a_notice_is_kept_or_dropped_with_why() -> None:
    verdicts = {v.address: v for v in explain(NOTICE).addresses}
    assert verdicts["kim@mailhost.example.net"].kept
    assert "mailed as kim@example.org" in verdicts["kim@mailhost.example.net"].why
    assert not verdicts["kim@example.org"].kept
    assert "address mailed" in verdicts["kim@example.org"].why
    assert not verdicts["postmaster@mx.example.net"].kept
    assert "role address" in verdicts["postmaster@mx.example.net"].why
    assert not verdicts["news@sender.example.com"].kept
    assert "sender side" in verdicts["news@sender.example.com"].why
    assert not verdicts["news-request@lists.example.com"].kept
    assert "mailing list" in verdicts["news-request@lists.example.com"].why


def test_the_rendered_text_names_the_winner_and_every_candidate() -> None:
    raw = make_dsn(Rcpt("kim@example.org", "5.2.2", diagnostic="552 5.2.2 Mailbox full"))
    explanation = explain(raw)
    text = render(explanation)
    (row,) = explanation.recipients
    assert "recipient kim@example.org: failed, soft, mailbox_full, 5.2.2" in text
    for c in row.candidates:
        assert f"{c.priority:4} {c.reason:18} {c.rule}" in text
    assert sum(line.lstrip().startswith("=>") for line in text.splitlines()) == 1
    assert "kim@example.org (fields): named by the rfc3464 layer's fields" in text


def test_a_message_that_is_no_bounce_says_why() -> None:
    text = render(explain(b"From: a@example.org\nSubject: hello\n\nJust saying hi.\n"))
    assert "kind: -" in text
    assert "problem: not a bounce, complaint or auto-reply" in text


def test_the_command_prints_the_explanation(tmp_path: Path) -> None:
    path = tmp_path / "notice.eml"
    path.write_bytes(NOTICE)
    result = subprocess.run(
        [CONSOLE_SCRIPT, "explain", str(path)], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().rstrip("\n") == render(explain(NOTICE))
