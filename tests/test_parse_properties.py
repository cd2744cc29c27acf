"""Properties of `bounced.parse` that no list of samples can cover.

- It never fails on any input: arbitrary bytes and text, and the bundled samples
  damaged by byte flips, truncations, insertions and deletions. `parse` wraps
  itself in a last-resort handler, so "never raises" is checked as "the handler
  was not needed" plus a well-formed `Report`.
- The line ending (LF, CRLF, CR) never changes what a sample says.
- RFC 3464 / RFC 6533 reports built from random facts give those facts back.
- A 15 MB message of pathological text parses to completion.
"""

from __future__ import annotations

import base64
import json
import quopri
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounced import Bounce, BounceClass, Kind, Reason, Report, parse

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dsn_samples"
SAMPLES = sorted(SAMPLES_DIR.glob("*.eml"))
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLES]

#: The prefixes of problems that say an exception was caught: by `parse`'s
#: last-resort handler, or by the MIME reader that then hands over to flanker.
CAUGHT = ("parser error", "MIME reader failed")

BOUNDED = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_sound(report: Report) -> None:
    """A report that a caller can trust the shape of, reached without a caught exception."""
    assert isinstance(report, Report)
    assert not [p for p in report.problems if p.startswith(CAUGHT)], report.problems
    assert report.kind is None or isinstance(report.kind, Kind)
    if report.kind is None:
        assert report.bounces == ()
    for row in report.bounces:
        assert isinstance(row, Bounce)
        assert isinstance(row.kind, Kind)
        assert row.bounce_class is None or isinstance(row.bounce_class, BounceClass)
        assert row.reason is None or isinstance(row.reason, Reason)
        json.dumps(row.to_dict())


# --- never raises ------------------------------------------------------------------------


@BOUNDED
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_sound(parse(raw))


@BOUNDED
@given(st.text(max_size=2048))
def test_arbitrary_text(raw: str) -> None:
    assert_sound(parse(raw))


#: Byte strings that steer a mutated message into the parser's structural paths.
STRUCTURAL = [
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"\x00",
    b"\x01",
    b"\x1b",
    b"\x7f",
    b"\x0b\x0c",
    b'; charset="\x00"',
    b"; boundary=\x00",
    b"\xff\xfe",
    b"\xc3",
    b"=",
    b"=\n",
    b"=?utf-8?b?",
    b"?=",
    b"--",
    b": ",
    b";",
    b'"',
    b"<",
    b">",
    b"@",
    b" \t ",
    b"\nContent-Type: multipart/report; report-type=delivery-status; boundary=",
    b"\nContent-Type: message/delivery-status\n\n",
    b"\nContent-Type: message/rfc822\n\n",
    b"\nContent-Transfer-Encoding: base64\n\n",
    b"\nContent-Transfer-Encoding: quoted-printable\n\n",
    b"\nFinal-Recipient: rfc822; ",
    b"\nAction: failed\n",
    b"\nStatus: 5.",
    b"\nDiagnostic-Code: smtp; 550 ",
    b"\nFeedback-Type: ",
    b"\nAuto-Submitted: auto-replied\n",
]


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLE_BYTES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]))
        if operation == "flip" and at < len(raw):
            raw[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif operation == "truncate":
            del raw[at:]
        elif operation == "insert":
            raw[at:at] = draw(st.one_of(st.sampled_from(STRUCTURAL), st.binary(max_size=32)))
        elif operation == "delete":
            del raw[at : at + draw(st.integers(min_value=1, max_value=200))]
        else:
            raw[at:at] = raw[at : at + draw(st.integers(min_value=1, max_value=80))] * draw(
                st.integers(min_value=2, max_value=50)
            )
    return bytes(raw)


@BOUNDED
@given(mutated_samples())
def test_mutated_samples(raw: bytes) -> None:
    assert_sound(parse(raw))


#: Control characters as mail carries them: data, never a reason to fail.
CONTROL = st.text(
    alphabet=st.sampled_from([chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)]),
    min_size=1,
    max_size=4,
)


@BOUNDED
@given(st.sampled_from(SAMPLE_BYTES), CONTROL, st.sampled_from(["charset=", "boundary=", ": "]))
def test_control_characters_in_headers_and_parameters_are_data(
    raw: bytes, control: str, where: str
) -> None:
    """A NUL or other control character after every header colon, charset or
    boundary parameter of a real message: read like any other character."""
    marked = raw.replace(where.encode(), where.encode() + control.encode())
    assert_sound(parse(marked))


# --- line endings ------------------------------------------------------------------------


def _as_lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _facts(report: Report) -> tuple:
    return report.kind, [row.to_dict() for row in report.bounces]


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_line_endings_do_not_change_the_rows(sample: Path, ending: bytes) -> None:
    lf = _as_lf(sample.read_bytes())
    expected = parse(lf)
    assert_sound(expected)
    assert _facts(parse(lf.replace(b"\n", ending))) == _facts(expected)


# --- generated RFC 3464 / RFC 6533 reports -----------------------------------------------

ATEXT_SPECIALS = "!#$%&'*+-/=?^_`{|}~"
ATOM = st.text(
    alphabet=string.ascii_lowercase + string.digits + ATEXT_SPECIALS, min_size=1, max_size=12
)
#: A local part's first atom: the address reader takes a leading ' or ` for the
#: junk mangled notices leave (bounced.dsn.address), so none is generated there.
FIRST_ATOM = ATOM.filter(lambda atom: atom[0] not in "'`")
UNICODE_ATOM = st.sampled_from(["josé", "müller", "δοκιμή", "用户", "пример", "ñandú", "ÿ"])
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
PARENT_DOMAIN = st.sampled_from(["example.com", "example.net", "example.org"])


@st.composite
def domains(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABEL, max_size=2))
    return ".".join([*labels, draw(PARENT_DOMAIN)])


@st.composite
def local_parts(draw: st.DrawFn, unicode: bool) -> str:
    """Dot-atoms full of the rarely seen atext characters, quoted strings, and
    (for RFC 6533) UTF-8 local parts."""
    atoms = st.one_of(ATOM, UNICODE_ATOM) if unicode else ATOM
    choice = draw(st.integers(min_value=0, max_value=5))
    if choice == 0:
        inner = draw(st.from_regex(r"[a-z0-9]([a-z0-9 .@,]{0,10}[a-z0-9])?", fullmatch=True))
        return f'"{inner}"'
    first = st.one_of(FIRST_ATOM, UNICODE_ATOM) if unicode else FIRST_ATOM
    return ".".join([draw(first), *draw(st.lists(atoms, max_size=2))])


@st.composite
def addresses(draw: st.DrawFn, unicode: bool) -> str:
    return f"{draw(local_parts(unicode))}@{draw(domains())}"


HOST = st.builds(lambda label, domain: f"{label}.{domain}", LABEL, domains())

OUTCOMES = {
    "failed": (
        ["5.1.1", "5.1.2", "5.1.10", "5.2.1", "5.2.2", "5.3.4", "5.4.4", "5.7.1", "5.7.26"],
        ["550", "551", "552", "553", "554"],
    ),
    "delayed": (["4.2.2", "4.3.2", "4.4.1", "4.4.7", "4.7.0"], ["421", "450", "451", "452"]),
    "delivered": (["2.0.0", "2.1.5", "2.6.0"], ["250"]),
    "relayed": (["2.0.0", "2.1.5"], ["250"]),
    "expanded": (["2.0.0", "2.1.5"], ["250"]),
}

WORDS = [
    "mailbox",
    "unavailable",
    "rejected",
    "please",
    "try",
    "again",
    "later",
    "Recipient",
    "address",
    "policy",
    "service",
    "temporarily",
    "the",
    "is",
    "not",
    "for",
    "this",
    "domain",
    "(in",
    "reply",
    "to",
    "RCPT",
    "TO",
    "command)",
    "[ref:",
    "abc]",
    "--",
    "ok;",
    "queued",
    "as",
    "id=QX",
]
ASCII_WORD = st.one_of(
    st.sampled_from(WORDS), st.text(alphabet=string.ascii_letters + ",.;:!?()'\"", min_size=1)
)
UNICODE_WORD = st.sampled_from(["Empfänger", "unbekannt", "不存在", "boîte", "pleine", "ящик"])
FOLDS = ["\n ", "\n\t", "\n    ", "\n        "]


@dataclass(frozen=True)
class Recipient:
    address: str
    action: str
    status: str
    reply_code: str
    text: str
    remote_mta: str
    folds: tuple[int, ...]
    field_case: str
    type_gap: str

    @property
    def diagnostic(self) -> str:
        return f"{self.reply_code} {self.status} {self.text}"


@st.composite
def recipients(draw: st.DrawFn, address: str, unicode: bool) -> Recipient:
    action = draw(st.sampled_from(sorted(OUTCOMES)))
    statuses, codes = OUTCOMES[action]
    words = st.one_of(ASCII_WORD, UNICODE_WORD) if unicode else ASCII_WORD
    text = " ".join(draw(st.lists(words, min_size=1, max_size=30)))
    gaps = text.count(" ") + 2  # the two spaces after the reply code and the status
    return Recipient(
        address=address,
        action=action,
        status=draw(st.sampled_from(statuses)),
        reply_code=draw(st.sampled_from(codes)),
        text=text,
        remote_mta=draw(st.one_of(st.just(""), HOST)),
        folds=tuple(
            draw(st.lists(st.integers(min_value=0, max_value=gaps - 1), unique=True, max_size=4))
        ),
        field_case=draw(st.sampled_from(["canonical", "lower", "upper"])),
        type_gap=draw(st.sampled_from(["", " ", "  "])),
    )


def _fold(value: str, at: tuple[int, ...], fold_with: str) -> str:
    """Replace the chosen spaces of a field value by a line break and indentation,
    as MTAs fold long Diagnostic-Code lines."""
    pieces = value.split(" ")
    out = pieces[0]
    for index, piece in enumerate(pieces[1:]):
        out += (fold_with if index in at else " ") + piece
    return out


def _field(name: str, value: str, case: str) -> str:
    name = {"lower": name.lower(), "upper": name.upper()}.get(case, name)
    return f"{name}: {value}"


HUMAN_TEXTS = {
    "us-ascii": "This is an automatically generated Delivery Status Notification.",
    "utf-8": "Dies ist eine automatisch erzeugte Zustellbenachrichtigung. 配信状態通知。",
    "iso-8859-1": "Ceci est un avis d'état de remise généré automatiquement.",
    "windows-1252": "Esto es una notificación de estado de entrega “automática”.",
    "koi8-r": "Это автоматически созданное уведомление о состоянии доставки.",  # noqa: RUF001
    "shift_jis": "これは自動的に生成された配信状態通知です。",
    "iso-2022-jp": "これは自動的に生成された配信状態通知です。",
    "gb2312": "这是自动生成的投递状态通知。",
}


@dataclass(frozen=True)
class GeneratedDsn:
    raw: bytes
    rows: tuple[Recipient, ...]
    reporting_mta: str
    message_id: str


@st.composite
def delivery_reports(draw: st.DrawFn) -> GeneratedDsn:
    unicode = draw(st.booleans())
    addrs = draw(
        st.lists(addresses(unicode), min_size=1, max_size=5, unique_by=lambda a: a.lower())
    )
    rows = tuple(draw(recipients(a, unicode)) for a in addrs)
    reporting_mta = draw(HOST)
    message_id = (
        f"<{draw(st.from_regex(r'[a-z0-9][a-z0-9.$_-]{3,30}', fullmatch=True))}@{draw(HOST)}>"
    )
    boundary = draw(st.from_regex(r"[A-Za-z0-9'()+_,./:=?-]{10,60}", fullmatch=True)).rstrip()
    fold_with = draw(st.sampled_from(FOLDS))
    charset = draw(st.sampled_from(sorted(HUMAN_TEXTS)))
    encoding = draw(st.sampled_from(["8bit", "quoted-printable", "base64"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    address_type = "utf-8" if unicode else draw(st.sampled_from(["rfc822", "RFC822"]))
    status_type = "message/global-delivery-status" if unicode else "message/delivery-status"
    headers_type = "message/global-headers" if unicode else "text/rfc822-headers"

    blocks = [
        "\n".join(
            [
                f"Reporting-MTA: dns; {reporting_mta}",
                "Arrival-Date: Mon, 6 May 2024 10:00:00 +0000",
            ]
        )
    ]
    for row in rows:
        lines = [
            _field(
                "Final-Recipient", f"{address_type};{row.type_gap}{row.address}", row.field_case
            ),
            _field("Action", row.action, row.field_case),
            _field("Status", row.status, row.field_case),
        ]
        if row.remote_mta:
            lines.append(_field("Remote-MTA", f"dns; {row.remote_mta}", row.field_case))
        diagnostic = _fold(row.diagnostic, row.folds, fold_with)
        lines.append(_field("Diagnostic-Code", f"smtp; {diagnostic}", row.field_case))
        blocks.append("\n".join(lines))
    status_part = "\n\n".join(blocks) + "\n"

    human = HUMAN_TEXTS[charset] + "\n"
    body = human.encode(charset)
    if encoding == "base64":
        body = base64.encodebytes(body)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(body)

    def text(value: str) -> bytes:
        return value.replace("\n", newline).encode("utf-8")

    raw = b"".join(
        [
            text(
                "From: Mail Delivery System <MAILER-DAEMON@"
                + reporting_mta
                + ">\nTo: sender@example.com\nSubject: Delivery Status Notification\n"
                "Date: Mon, 6 May 2024 10:00:05 +0000\nMIME-Version: 1.0\n"
                f"Content-Type: multipart/report; report-type={status_type.split('/')[1]};\n"
                f' boundary="{boundary}"\n\n'
                f"--{boundary}\n"
                f"Content-Type: text/plain; charset={charset}\n"
                f"Content-Transfer-Encoding: {encoding}\n\n"
            ),
            body.replace(b"\r\n", b"\n").replace(b"\n", newline.encode()),
            text(
                f"\n--{boundary}\nContent-Type: {status_type}\n"
                f"Content-Transfer-Encoding: 8bit\n\n{status_part}\n"
            ),
            text(
                f"--{boundary}\nContent-Type: {headers_type}\n\n"
                "From: sender@example.com\nSubject: hello\n"
                f"Message-ID: {message_id}\n\n--{boundary}--\n"
            ),
        ]
    )
    return GeneratedDsn(raw=raw, rows=rows, reporting_mta=reporting_mta, message_id=message_id)


#: The `Bounce` fields a generated report states outright.
GENERATED_FACTS = (
    "recipient",
    "kind",
    "status",
    "reply_code",
    "diagnostic",
    "remote_mta",
    "reporting_mta",
    "original_message_id",
)


@BOUNDED
@given(delivery_reports())
def test_generated_reports_give_their_facts_back(dsn: GeneratedDsn) -> None:
    report = parse(dsn.raw)
    assert_sound(report)
    got = [{name: row.to_dict()[name] for name in GENERATED_FACTS} for row in report.bounces]
    want = [
        {
            "recipient": row.address,
            "kind": row.action,
            "status": row.status,
            "reply_code": row.reply_code,
            "diagnostic": row.diagnostic,
            "remote_mta": row.remote_mta,
            "reporting_mta": dsn.reporting_mta,
            "original_message_id": dsn.message_id,
        }
        for row in dsn.rows
    ]
    for row in got:
        row["original_message_id"] = "<" + row["original_message_id"].strip("<>") + ">"
    assert got == want
    actions = {row.action for row in dsn.rows}
    if len(actions) == 1:
        assert str(report.kind) == actions.pop()


# --- size --------------------------------------------------------------------------------

MB = 1 << 20


def _pathological_text(size: int) -> bytes:
    """Runs that make naive patterns backtrack: no newlines, repeated delimiters,
    endless address-like and code-like fragments, blank-looking lines."""
    pieces = [
        b"a" * (3 * MB),
        b"<" * MB,
        b"@" * MB,
        b"<<<<@@@@>>>>" * (MB // 12),
        (b" " * 998 + b"\n") * (MB // 999),
        b"5.5.5.5.5." * (MB // 10),
        b"550 550 550 " * (MB // 12),
        b"=?utf-8?q?" * (MB // 10),
        (b"x" * 70 + b"=\n") * (MB // 72),
        b"Diagnostic-Code: smtp; " * (MB // 23),
    ]
    text = b"".join(pieces)
    return (text * (size // len(text) + 1))[:size]


def _huge_message(variant: str) -> bytes:
    junk = _pathological_text(15 * MB)
    if variant == "text-body":
        return (
            b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n"
            b"To: sender@example.org\nSubject: Undelivered Mail Returned to Sender\n\n"
            b"<huge@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1 User unknown\n\n"
            + junk
        )
    if variant == "dsn-diagnostic":
        return (
            b"From: MAILER-DAEMON@mx.example.com\nTo: sender@example.org\n"
            b"Subject: Delivery Status Notification (Failure)\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            b"Final-Recipient: rfc822; huge@example.net\nAction: failed\nStatus: 5.1.1\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 " + junk.replace(b"\n", b" ") + b"\n\n--B--\n"
        )
    return b"Subject: " + junk.replace(b"\n", b"") + b"\nFrom: someone@example.org\n\nhi\n"


@pytest.mark.parametrize("variant", ["text-body", "dsn-diagnostic", "one-header-line"])
def test_huge_pathological_message_completes(variant: str) -> None:
    report = parse(_huge_message(variant))
    assert_sound(report)
    if variant == "dsn-diagnostic":
        assert [row.recipient for row in report.bounces] == ["huge@example.net"]
