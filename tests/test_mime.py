"""bounced.dsn.mime: the MIME reader on messages built here, part by part.

What the parsing layers rely on: the top headers (unfolded, encoded words
decoded), the readable parts in order with their text decoded (transfer
encoding, then charset), the returned original's headers and a bounded prefix
of its text, and no exception for any input.
"""

from __future__ import annotations

import base64
import quopri

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounced.dsn import mime
from bounced.dsn.mime import MAX_ORIGINAL_CHARS, MAX_PARSE_BYTES, Mail, header_block, read

JAPANESE = "この電子メールは配送できませんでした。宛先が見つかりません。"


def message(body: str, content_type: str, *headers: str) -> bytes:
    """A message with these top headers and body (LF line ends)."""
    top = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
        "To: sender@example.com",
        "Subject: Undelivered Mail Returned to Sender",
        "Message-ID: <dsn-1@mx.example.net>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
        *headers,
    ]
    return ("\n".join(top) + "\n\n" + body).encode("utf-8")


def multipart(boundary: str, *parts: str, close: bool = True) -> str:
    """Body parts (each its own header block, blank line, body) between boundary lines."""
    body = "This is a MIME-encapsulated message.\n\n"
    body += "".join(f"--{boundary}\n{part}\n" for part in parts)
    return body + (f"--{boundary}--\nepilogue text\n" if close else "")


def types(mail: Mail) -> list[str]:
    return [p.content_type for p in mail.parts]


STATUS = """\
Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown
"""

ORIGINAL = """\
Return-Path: <sender@example.com>
From: Sender <sender@example.com>
To: nobody@example.org
Subject: Hello
Message-ID: <original-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

Text of the original, never a part of the bounce.
--inner--
"""


def report(*, close: bool = True) -> bytes:
    """A DSN: a nested multipart/alternative notice, the status fields, the original."""
    alternative = multipart(
        "alt-1",
        "Content-Type: text/plain; charset=us-ascii\n\nYour message could not be delivered.\n",
        "Content-Type: text/html\n\n<p>Your message could not be delivered.</p>\n",
    )
    body = multipart(
        "outer",
        f"Content-Type: multipart/alternative; boundary=alt-1\n\n{alternative}",
        f"Content-Type: message/delivery-status\n\n{STATUS}",
        f"Content-Type: message/rfc822\n\n{ORIGINAL}",
        close=close,
    )
    return message(body, 'multipart/report; report-type=delivery-status; boundary="outer"')


def test_nested_multipart_gives_the_readable_leaves_in_order() -> None:
    mail = read(report())
    assert types(mail) == ["text/plain", "text/html", "message/delivery-status"]
    assert mail.parts[0].text == "Your message could not be delivered.\n"
    assert mail.parts[1].text == "<p>Your message could not be delivered.</p>\n"
    assert mail.headers.get("SUBJECT") == "Undelivered Mail Returned to Sender"
    assert "message-id" in mail.headers and "x-missing" not in mail.headers
    assert mail.problems == ()


def test_a_status_part_is_its_raw_field_block() -> None:
    assert read(report()).parts[2].text == STATUS


def test_message_rfc822_gives_the_original_headers_and_text_not_its_parts() -> None:
    mail = read(report())
    assert mail.original.get("message-id") == "<original-1@example.com>"
    assert mail.original.get("to") == "nobody@example.org"
    assert mail.original_raw.startswith("Return-Path: <sender@example.com>\n")
    assert "Text of the original" in mail.original_raw
    assert not any("Text of the original" in p.text for p in mail.parts)


def test_a_long_original_is_kept_up_to_the_bound() -> None:
    original = ORIGINAL + "x" * (2 * MAX_ORIGINAL_CHARS)
    body = multipart(
        "b", "Content-Type: text/plain\n\nnotice\n", f"Content-Type: message/rfc822\n\n{original}"
    )
    mail = read(message(body, "multipart/mixed; boundary=b"))
    assert len(mail.original_raw) == MAX_ORIGINAL_CHARS
    assert mail.original.get("subject") == "Hello"


def test_only_the_first_original_counts() -> None:
    second = ORIGINAL.replace("original-1", "original-2")
    body = multipart(
        "b",
        f"Content-Type: message/rfc822\n\n{ORIGINAL}",
        f"Content-Type: message/rfc822\n\n{second}",
    )
    mail = read(message(body, "multipart/mixed; boundary=b"))
    assert mail.original.get("message-id") == "<original-1@example.com>"


def test_text_rfc822_headers_gives_the_original_headers() -> None:
    headers = "From: sender@example.com\nTo: nobody@example.org\nMessage-ID: <orig-9@example.com>\n"
    body = multipart(
        "b",
        "Content-Type: text/plain\n\nnotice\n",
        f"Content-Type: text/rfc822-headers\n\n{headers}",
    )
    mail = read(message(body, "multipart/report; boundary=b"))
    assert types(mail) == ["text/plain"]
    assert mail.original.get("message-id") == "<orig-9@example.com>"
    assert mail.original.get("to") == "nobody@example.org"


def test_base64_and_quoted_printable_text_parts_are_decoded_with_their_charset() -> None:
    b64 = base64.encodebytes("Zustellung fehlgeschlagen: Empfänger unbekannt".encode()).decode()
    qp = quopri.encodestring("Adresse inconnue: échec de la remise".encode("latin-1")).decode()
    body = multipart(
        "b",
        f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{b64}",
        "Content-Type: text/plain; charset=ISO-8859-1\n"
        f"Content-Transfer-Encoding: Quoted-Printable\n\n{qp}",
    )
    mail = read(message(body, "multipart/mixed; boundary=b"))
    assert mail.parts[0].text == "Zustellung fehlgeschlagen: Empfänger unbekannt"
    assert mail.parts[1].text.rstrip("\n") == "Adresse inconnue: échec de la remise"


def test_a_base64_status_part_is_decoded() -> None:
    b64 = base64.encodebytes(STATUS.encode()).decode()
    body = multipart(
        "b", f"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n{b64}"
    )
    assert read(message(body, "multipart/report; boundary=b")).parts[0].text == STATUS


def test_damaged_base64_is_read_as_far_as_it_goes() -> None:
    good = base64.b64encode(b"User unknown: nobody@example.org").decode()
    body = multipart(
        "b", f"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{good[:-3]}!!\n"
    )
    assert (
        read(message(body, "multipart/mixed; boundary=b"))
        .parts[0]
        .text.startswith("User unknown: nobody@example")
    )


def test_iso_2022_jp_text_is_decoded() -> None:
    raw = message("", "text/plain; charset=ISO-2022-JP").decode() + "\n"
    mail = read(raw.encode() + JAPANESE.encode("iso-2022-jp") + b"\n")
    assert mail.parts[0].text.strip() == JAPANESE


def test_eight_bit_text_in_its_declared_charset() -> None:
    head = message("", "text/plain; charset=shift_jis")
    mail = read(head + JAPANESE.encode("shift_jis"))
    assert mail.parts[0].text == JAPANESE


def test_an_unknown_charset_is_read_as_utf8_without_failing() -> None:
    mail = read(message("Empfänger unbekannt\n", "text/plain; charset=x-no-such-charset"))
    assert mail.parts[0].text == "Empfänger unbekannt\n"
    broken = message("", "text/plain; charset=utf-8") + b"bad \xff\xfe bytes\n"
    assert read(broken).parts[0].text.startswith("bad ")


def test_a_missing_closing_boundary_keeps_the_last_part() -> None:
    mail = read(report(close=False))
    assert types(mail) == ["text/plain", "text/html", "message/delivery-status"]
    assert mail.original.get("message-id") == "<original-1@example.com>"


def test_a_multipart_whose_boundary_never_appears_is_plain_text() -> None:
    body = "The mail system could not deliver your message.\n\n" + STATUS
    mail = read(message(body, 'multipart/report; boundary="never-used"'))
    assert types(mail) == ["text/plain"]
    assert mail.parts[0].text == body
    assert any("without its boundary" in p for p in mail.problems)


def test_a_multipart_that_names_no_boundary_is_split_on_its_recurring_dash_lines() -> None:
    body = multipart(
        "guess-me",
        "Content-Type: text/plain\n\nno such user\n",
        f"Content-Type: message/delivery-status\n\n{STATUS}",
    )
    mail = read(message(body, "multipart/report; report-type=delivery-status"))
    assert types(mail) == ["text/plain", "message/delivery-status"]
    assert not any("without its boundary" in p for p in mail.problems)


def test_a_boundary_on_a_continuation_line_without_indent_is_found() -> None:
    inner = multipart("inner-b", "Content-Type: text/plain\n\nmailbox unavailable\n")
    body = multipart(
        "outer-b", f'Content-Type: multipart/alternative;\nboundary="inner-b"\n\n{inner}'
    )
    mail = read(message(body, "multipart/mixed; boundary=outer-b"))
    assert [p.text for p in mail.parts] == ["mailbox unavailable\n"]


def test_a_boundary_that_begins_another_boundary_is_not_confused_with_it() -> None:
    inner = multipart("b-1", "Content-Type: text/plain\n\ninner text\n")
    body = multipart(
        "b", f"Content-Type: multipart/mixed; boundary=b-1\n\n{inner}", "\nouter text\n"
    )
    mail = read(message(body, "multipart/mixed; boundary=b"))
    assert [p.text for p in mail.parts] == ["inner text\n", "outer text\n"]


def test_quoted_boundary_with_an_escaped_quote_and_parameters_in_any_order() -> None:
    boundary = 'odd"one'
    body = multipart(boundary, "Content-Type: text/plain\n\nfound\n")
    ctype = 'multipart/mixed; charset="us-ascii"; BOUNDARY="odd\\"one"; x=y'
    assert [p.text for p in read(message(body, ctype)).parts] == ["found\n"]


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_line_endings_do_not_change_the_result(ending: str) -> None:
    lf = report()
    assert view(read(lf.replace(b"\n", ending.encode()))) == view(read(lf))


def view(mail: Mail) -> tuple:
    names = ("from", "to", "subject", "message-id", "content-type")
    return (
        [mail.headers.get_all(n) for n in names],
        mail.parts,
        [mail.original.get_all(n) for n in names],
        mail.original_raw,
        mail.problems,
    )


def test_encoded_words_in_headers_are_decoded() -> None:
    subject = "=?UTF-8?B?" + base64.b64encode(b"Zustellung fehlgeschlagen").decode() + "?="
    mail = read(
        message("x", "text/plain", f"X-Original-Subject: {subject}").replace(
            b"Subject: Undelivered Mail Returned to Sender",
            b"Subject: =?ISO-8859-1?Q?=C9chec_de?=\n =?ISO-8859-1?Q?_la_remise?= (notice)",
        )
    )
    assert mail.headers.get("subject") == "Échec de la remise (notice)"
    assert mail.headers.get("x-original-subject") == "Zustellung fehlgeschlagen"


def test_a_multibyte_character_split_between_encoded_words_survives() -> None:
    data = "配送できません".encode()
    first, second = base64.b64encode(data[:4]).decode(), base64.b64encode(data[4:]).decode()
    value = f"=?utf-8?B?{first}?= =?utf-8?B?{second}?="
    assert header_block(f"Subject: {value}\n").get("subject") == "配送できません"


def test_iso_2022_jp_encoded_word() -> None:
    word = base64.b64encode(JAPANESE.encode("iso-2022-jp")).decode()
    assert header_block(f"Subject: =?ISO-2022-JP?B?{word}?=\n").get("subject") == JAPANESE


def test_malformed_encoded_words_stay_as_they_came() -> None:
    assert (
        header_block("Subject: =?bogus?X?abc?= and =?\n").get("subject") == "=?bogus?X?abc?= and =?"
    )


def test_folded_headers_are_unfolded_and_repeated_ones_kept() -> None:
    raw = message(
        "x", "text/plain", "Received: from a\n\tby b", "Received: from c\n    by d;\n  date"
    )
    assert read(raw).headers.get_all("received") == ["from a by b", "from c by d; date"]


def test_header_block_skips_leading_text_and_stops_at_the_first_other_line() -> None:
    block = (
        "----- Original message -----\n\nFrom: a@example.com\nTo: b@example.org\nbody line\nX: y\n"
    )
    headers = header_block(block)
    assert headers.get("to") == "b@example.org"
    assert "x" not in headers


def test_an_mbox_from_line_before_the_headers_is_skipped() -> None:
    mail = read(b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\n" + report())
    assert mail.headers.get("message-id") == "<dsn-1@mx.example.net>"
    assert types(mail) == ["text/plain", "text/html", "message/delivery-status"]


def test_a_message_past_the_parse_bound_is_read_from_its_start() -> None:
    raw = report() + b"x" * MAX_PARSE_BYTES
    mail = read(raw)
    assert types(mail) == ["text/plain", "text/html", "message/delivery-status"]
    assert any("longer than" in p for p in mail.problems)


@pytest.mark.parametrize("reader", [mime.from_flanker, mime.from_stdlib])
def test_the_fallback_readers_agree_on_a_well_formed_message(reader) -> None:
    text, _, _ = mime.decoded(report())
    fast, other = read(text), reader(text, [])
    assert types(other) == types(fast)
    assert [p.text.strip() for p in other.parts] == [p.text.strip() for p in fast.parts]
    assert other.headers.get("subject") == fast.headers.get("subject")
    assert other.original.get("message-id") == fast.original.get("message-id")


TOKENS = st.sampled_from(
    [
        "\n",
        "\r\n",
        "\r",
        " ",
        "\t",
        ":",
        ";",
        "=",
        '"',
        "\\",
        "--",
        "--b",
        "--b--",
        "=?",
        "?=",
        "?B?",
        "?Q?",
        "=?utf-8?B?",
        "=?iso-2022-jp?Q?",
        "Content-Type: ",
        "multipart/mixed",
        "multipart/report",
        "message/rfc822",
        "text/rfc822-headers",
        "message/delivery-status",
        "text/plain",
        "; boundary=b",
        '; boundary="b"',
        "; charset=",
        "iso-2022-jp",
        "utf-7",
        "Content-Transfer-Encoding: ",
        "base64",
        "quoted-printable",
        "From ",
        "\x1b$B",
        "é",
        "\xff",
    ]
)
MIME_LIKE = st.lists(st.one_of(TOKENS, st.text(max_size=6)), max_size=80).map("".join)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2000))
def test_read_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(read(raw), Mail)


@FUZZ
@given(MIME_LIKE)
def test_read_never_raises_on_mime_like_text_and_uses_no_fallback(text: str) -> None:
    mail = read(text)
    assert isinstance(mail, Mail)
    assert not any("MIME reader failed" in p for p in mail.problems)
    assert all(isinstance(p.text, str) for p in mail.parts)
