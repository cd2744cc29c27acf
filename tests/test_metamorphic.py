"""Metamorphic relations: edits that change nothing a bounce means must change
nothing in its rows (or change exactly what the edit says).

Run over the bundled samples and, when it is there, the shared corpus (read in
place, never copied): addresses renamed, equivalent spellings of the status
fields swapped, an antivirus footer and a disclaimer appended to the notice,
the returned original's body replaced, and the notice's standard sentences put
into another language. A rule that fits a sample's incidental words, rather
than what the server said, fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bounced import Report, parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "fixtures" / "dsn_samples").glob("*.eml"))
CORPUS = next(
    (d for f in ROOT.parents if (d := f / "shared" / "corpus" / "sisimai" / "eml").is_dir()), None
)
CORPUS_FILES = sorted(CORPUS.glob("*.eml")) if CORPUS else []
MESSAGES = [pytest.param(p, id=p.stem) for p in SAMPLES] + [
    pytest.param(p, id=f"corpus/{p.stem}") for p in CORPUS_FILES
]


def _meaning(report: Report) -> tuple:
    """What a report says, without the texts an edit may change (diagnostics)."""
    return report.kind, [
        (b.recipient.lower(), b.kind, b.bounce_class, b.reason, b.status, b.reply_code)
        for b in report.bounces
    ]


def _read(path: Path) -> bytes:
    return path.read_bytes().replace(b"\r\n", b"\n")


# --- the edits -------------------------------------------------------------------------------


def _renamed(raw: bytes, report: Report) -> tuple[bytes, dict[str, str]]:
    """Each recipient's local part replaced, wherever the whole address stands
    in the bytes (an address only inside base64 text stays as it is)."""
    names = {}
    for index, row in enumerate(report.bounces):
        address = row.recipient.lower()
        local, _, domain = address.rpartition("@")
        pattern = re.compile(re.escape(address).encode(), re.IGNORECASE)
        if local and '"' not in local and pattern.search(raw):
            names[address] = f"renamed{index}x@{domain}"
            raw = pattern.sub(names[address].encode(), raw)
    return raw, names


_FIELD_SPELLINGS = [
    (rb"(?im)^status:[ \t]*", b"STATUS: "),
    (rb"(?im)^action:[ \t]*", b"action:  "),
    (rb"(?im)^(diagnostic-code:[ \t]*)smtp;[ \t]*", rb"\1SMTP; "),
    (rb"(?im)^(final-recipient:[ \t]*)rfc822;[ \t]*", rb"\1RFC822;"),
]


def _respelled(raw: bytes) -> bytes:
    """Field names and types in another case and spacing (RFC 3464: the same fields)."""
    for pattern, spelling in _FIELD_SPELLINGS:
        raw = re.sub(pattern, spelling, raw)
    return raw


FOOTER = (
    b"\n\nThis email has been scanned for viruses and spam by ExampleGuard Antivirus."
    b"\nJunk mail, malware and phishing are blocked. www.example.net/virus-free\n"
    b"\nDisclaimer: this e-mail and any attachments are confidential and may be privileged."
    b" If you are not the intended recipient, the mailbox is full of legal text.\n\n"
)
_FIRST_PART = re.compile(rb"(?s)\A(.*?\n--([^\n]+)\n(?:[^\n]+\n)*?\n)(.*?)(\n--\2)")


def _with_footer(raw: bytes) -> bytes | None:
    """A footer after the notice's first text part; None where no plain text part leads."""
    head, _, _ = raw.partition(b"\n\n")
    if b"multipart/" not in head.lower():
        if b"content-transfer-encoding" in head.lower():
            return None
        return raw + FOOTER
    match = _FIRST_PART.search(raw)
    if not match:
        return None
    part_head = match.group(1)[match.group(1).rfind(b"\n--") :].lower()
    if b"text/plain" not in part_head and b"content-type" in part_head:
        return None
    if b"base64" in part_head or b"quoted-printable" in part_head:
        return None
    return raw[: match.end(3)] + FOOTER + raw[match.end(3) :]


ORIGINAL_BODY = (
    b"Cheap watches! Unsubscribe. Your mailbox is full, the user is unknown, virus found,\n"
    b"spam blocked, account suspended, message too large, relay denied.\n"
)
_ORIGINAL_PART = re.compile(
    rb"(?is)(\ncontent-type:[ \t]*message/rfc822[^\n]*\n(?:[^\n]+\n)*\n(?:[^\n]+\n)+?\n)(.*?)(\n--)"
)


def _original_replaced(raw: bytes) -> bytes | None:
    """The returned original's body (past its own headers) replaced; None without one."""
    match = _ORIGINAL_PART.search(raw)
    if not match:
        return None
    return raw[: match.start(2)] + ORIGINAL_BODY + raw[match.end(2) :]


#: Standard sentences of notices, as the MTAs write them, and a translation.
#: None of them is what a family is recognised by, nor a reason.
SENTENCES = [
    (
        b"I'm sorry to have to inform you that your message could not\nbe delivered to one"
        b" or more recipients.",
        "Es tut uns leid, Ihnen mitteilen zu müssen, dass Ihre Nachricht\nnicht an einen"
        " oder mehrere Empfänger zugestellt werden konnte.".encode(),
    ),
    (
        b"For further assistance, please send mail to postmaster.",
        "Pour toute aide, écrivez au responsable de la messagerie.".encode(),
    ),
    (
        b"If you do so, please include this problem report. You can\ndelete your own text"
        b" from the attached returned message.",
        b"Si lo hace, incluya este informe. Puede\nborrar su propio texto del mensaje"
        b" devuelto adjunto.",
    ),
    (
        b"A message that you sent could not be delivered to one or more of its\nrecipients.",
        "Un messaggio che hai inviato non è stato consegnato a uno o più dei suoi\n"
        "destinatari.".encode(),
    ),
]


def _translated(raw: bytes) -> bytes | None:
    """The standard sentences put into another language; None when none stands there."""
    out = raw
    for english, other in SENTENCES:
        out = out.replace(english, other)
    return None if out == raw else out


EDITS: dict[str, Callable[[bytes], bytes | None]] = {
    "respelled": _respelled,
    "footer": _with_footer,
    "original body": _original_replaced,
    "translated": _translated,
}


# --- the relations ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", MESSAGES)
def test_renaming_the_recipients_renames_the_rows_and_nothing_else(path: Path) -> None:
    raw = _read(path)
    before = parse(raw)
    edited, names = _renamed(raw, before)
    after = _meaning(parse(edited))
    kind, rows = _meaning(before)
    expected = (kind, [(names.get(r[0], r[0]), *r[1:]) for r in rows])
    assert after == expected


def _applicable() -> list:
    """(message, edit) for each edit that finds its place in the message."""
    out = []
    for param in MESSAGES:
        (path,) = param.values
        raw = _read(path)
        for name in sorted(EDITS):
            edited = EDITS[name](raw)
            if edited is not None and edited != raw:
                out.append(pytest.param(raw, edited, id=f"{param.id}-{name.replace(' ', '-')}"))
    return out


@pytest.mark.parametrize(("raw", "edited"), _applicable())
def test_an_edit_that_changes_no_meaning_changes_no_row(raw: bytes, edited: bytes) -> None:
    assert _meaning(parse(edited)) == _meaning(parse(raw))


def test_the_edits_apply_to_many_messages() -> None:
    """The relations are checked, not skipped: each edit finds its place often."""
    raws = [_read(p) for p in SAMPLES]
    for name, edit in EDITS.items():
        applied = sum(1 for raw in raws if (e := edit(raw)) is not None and e != raw)
        assert applied >= 5, name
