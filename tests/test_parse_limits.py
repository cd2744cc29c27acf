"""Work per message stays bounded whatever a notice holds (issue 3: no input may
cost minutes). A regression here shows as a test that runs for minutes."""

from __future__ import annotations

import bounced
from bounced.dsn.text import MAX_RECIPIENTS

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
