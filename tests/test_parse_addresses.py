"""Which address a row names: the address reader's normalisation, the address
the sender mailed before the one it was forwarded to, and the addresses of a
notice that are no recipients."""

from __future__ import annotations

import pytest
from helpers.dsn import Rcpt, make_dsn

from bounced import parse
from bounced.dsn.address import addresses, clean_address


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("'kim@example.org", "kim@example.org"),
        ("`kim@example.org'", "kim@example.org"),
        ("SMTP=kim@example.org", "kim@example.org"),
        ("SMTP:kim@example.org", "kim@example.org"),
        ("c=US;a= ;p=Example Org;o=Exchange;dda:SMTP=kim@example.org;", "kim@example.org"),
        ("rfc822;kim@example.org", "kim@example.org"),
        ("rfc822; <kim@example.org>", "kim@example.org"),
        ("<kim@example.org>.", "kim@example.org"),
        ("kim@example.org,;", "kim@example.org"),
        ("<<kim@example.org>>", "kim@example.org"),
        ("mailto:kim@example.org", "kim@example.org"),
        ("kim@b.c", "kim@b.c"),
        ('"kim lee"@example.org', '"kim lee"@example.org'),
        ("bounce+kim=example.org@lists.example.com", "bounce+kim=example.org@lists.example.com"),
    ],
)
def test_the_address_reader_undoes_the_junk_around_an_address(value: str, address: str) -> None:
    assert clean_address(value) == address


def test_an_address_after_an_equals_sign_inside_a_word_is_no_address() -> None:
    assert addresses("id=QX9 key=value@notanaddress x=1") == []


def test_original_recipient_is_the_row_and_final_recipient_kept_beside_it() -> None:
    raw = make_dsn(Rcpt("kim.forwarded@mail.example.net", original="kim@example.org"))
    (row,) = parse(raw).bounces
    assert row.recipient == "kim@example.org"
    assert row.final_recipient == "kim.forwarded@mail.example.net"
    assert row.to_dict()["final_recipient"] == "kim.forwarded@mail.example.net"


def test_an_exchange_encapsulated_original_recipient_is_not_the_address_mailed() -> None:
    original = (
        "IMCEAEX-_O=EXAMPLE_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=KIM@corp.example.org"
    )
    (row,) = parse(make_dsn(Rcpt("kim@example.org", original=original))).bounces
    assert row.recipient == "kim@example.org"


@pytest.mark.parametrize("original", ["", "KIM@example.org", "rfc822;"])
def test_final_recipient_stays_empty_when_it_is_the_address_mailed(original: str) -> None:
    (row,) = parse(make_dsn(Rcpt("kim@example.org", original=original))).bounces
    assert row.recipient.lower() == "kim@example.org"
    assert row.final_recipient == ""


NOTICE = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: news@sender.example.com
Subject: Undelivered Mail Returned to Sender

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

{line}
"""


@pytest.mark.parametrize(
    "line",
    [
        "<kim@mailhost.example.net> (expanded from <kim@example.org>): user unknown",
        "kim@mailhost.example.net\n    (generated from kim@example.org)\n    user unknown",
        "kim@mailhost.example.net\n  (ultimately generated from kim@example.org)\n  unknown user",
        "<kim@mailhost.example.net>... User unknown\n    (expanded from: <kim@example.org>)",
    ],
)
def test_an_alias_the_notice_names_is_the_row_and_not_a_second_recipient(line: str) -> None:
    (row,) = parse(NOTICE.format(line=line).encode()).bounces
    assert (row.recipient, row.final_recipient) == ("kim@example.org", "kim@mailhost.example.net")
    assert row.reason == "user_unknown"


SENDER_SIDE = """\
From: MAILER-DAEMON@mx.example.net
To: bounces+x7@sender.example.com
Delivered-To: bounces+x7@sender.example.com
Subject: Mail delivery failed

Your message to kim@example.org could not be delivered: 550 5.1.1 user unknown.
Replies went to replies@sender.example.com, and the list is news-request@lists.example.com.
Delivered-To: bounces+x7@sender.example.com

------ This is a copy of the message, including all the headers. ------
From: news@sender.example.com
Reply-To: replies@sender.example.com
To: kim@example.org
Subject: News
"""


def test_the_sender_side_and_list_addresses_are_no_recipients() -> None:
    (row,) = parse(SENDER_SIDE.encode()).bounces
    assert (row.recipient, row.reason) == ("kim@example.org", "user_unknown")
