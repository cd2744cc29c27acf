"""Read a raw message into the few things the layers need: top headers, the
decoded human-readable and machine-readable parts, and the returned original.

A small reader does the MIME work in linear passes: header blocks end at the
first blank line, multiparts split on their `--boundary` lines, and only the
parts the layers read are decoded (base64 and quoted-printable by `binascii`,
charsets by Python's codecs, never strictly). The returned original contributes
its headers and a bounded prefix of its text, never its (possibly 25 MB) body.
It is tolerant where real bounces are broken: a boundary parameter on a
continuation line without indent, a missing closing boundary, a multipart whose
boundary never appears (its body is then read as plain text).

Should the fast reader fail (a bug of ours), flanker, a full MIME parser, reads
the message instead; it is imported only then, as its grammar tables take a
fifth of a second to build. When flanker refuses a damaged message the stdlib
`email` package (which never refuses) takes over, and when all fail the whole
message is treated as one text part. (flanker does not re-read the messages
whose declared multipart has no parts: on the corpus it refused every one of
them, and the import alone costs more than reading a hundred messages.)
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # the stdlib reader is the last resort: imported when used
    from email.message import Message as StdMessage

__all__ = [
    "CUT_PROBLEM",
    "MAX_ORIGINAL_CHARS",
    "MAX_PARSE_BYTES",
    "TRACE_FIELDS",
    "Headers",
    "Mail",
    "Part",
    "decoded",
    "from_flanker",
    "from_stdlib",
    "header_block",
    "read",
]

#: Bounce notices and status parts sit at the start of a message; past this many
#: bytes there is only the returned original. Parsing stops here so that neither
#: a huge attachment nor pathological text can cost more than a bounded amount.
MAX_PARSE_BYTES = 1 << 20
#: The problem a message cut at MAX_PARSE_BYTES carries (a caller that finds no row
#: in it says so rather than nothing: the rows may lie past the cut).
CUT_PROBLEM = f"message longer than {MAX_PARSE_BYTES} bytes: read the start only"

#: Parts whose text the layers read.
_READABLE = (
    "text/",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/feedback-report",
    "message/disposition-notification",
)
_ORIGINAL_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/rfc822-headers",
    "message/global-headers",
)
_ISO_2022_ESCAPE = "\x1b$"

#: A returned original that is itself a bounce is parsed again; this much of it is kept.
MAX_ORIGINAL_CHARS = 256 * 1024

#: Multiparts nested deeper than this, and parts past this count, are not read:
#: real bounces nest three levels at most; the bounds keep hostile input linear.
_MAX_DEPTH = 12
_MAX_PARTS = 500
#: `--token` lines tried as the boundary of a multipart that names none.
_MAX_GUESSES = 20
#: Of a Content-Type field, this much is read (real ones take a line or three).
_MAX_CONTENT_TYPE = 4096


class Headers:
    """Case-insensitive, multi-valued header view with decoded, unfolded values.

    Read from a message, the fields stay raw until a name is looked up: the
    layers ask for a dozen names, a bounce carries dozens of fields, and the
    encoded words of the rest need never be decoded."""

    __slots__ = ("_fields", "_values")

    def __init__(self, items: Iterable[tuple[str, object]] = ()) -> None:
        # object: flanker gives some values as its own types (ContentType), and the
        # compiled parser checks what the annotation says (see setup.py).
        self._fields: dict[str, list[list[str]]] = {}
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            self._values.setdefault(str(name).lower(), []).append(_unfold(str(value)))

    @classmethod
    def _read(cls, fields: list[list[str]]) -> Headers:
        """Headers over raw fields ([name, line, continuation...] each)."""
        headers = cls()
        for f in fields:
            headers._fields.setdefault(f[0].lower(), []).append(f)
        return headers

    def _all(self, name: str) -> list[str]:
        values = self._values.get(name)
        if values is None:
            values = self._values[name] = [_field_value(f) for f in self._fields.get(name, ())]
        return values

    def get(self, name: str, default: str = "") -> str:
        values = self._all(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._all(name.lower()))

    def __contains__(self, name: str) -> bool:
        name = name.lower()
        return name in self._fields or bool(self._values.get(name))

    def __bool__(self) -> bool:
        return bool(self._fields) or any(self._values.values())


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf of the message outside the returned original."""

    content_type: str
    text: str


@dataclass(frozen=True, slots=True)
class Mail:
    """What the parsing layers see of one message."""

    headers: Headers
    parts: tuple[Part, ...]
    original: Headers = field(default_factory=lambda: Headers([]))
    original_raw: str = ""
    problems: tuple[str, ...] = ()

    def parts_of(self, *prefixes: str) -> Iterator[Part]:
        return (p for p in self.parts if p.content_type.startswith(prefixes))


_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\n)+")


def decoded(raw: bytes | str) -> tuple[str, str, list[str]]:
    """Bytes or text in, LF-only text out, bounded in size; the codec that turns the
    text back into the message's bytes (parts with their own charset or transfer
    encoding are decoded from those); and what was odd."""
    problems: list[str] = []
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_PARSE_BYTES:
        raw = _within_limit(raw, problems)
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if raw[:1] in (b"\n", b" ", b"\t"):
        # Blank or space-only lines before the headers (a message saved by hand,
        # a spool that prepends a newline): the headers are still the headers.
        raw = _LEADING_BLANK_LINES.sub(b"", raw, count=1)
    # Headers and 8-bit bodies arrive in any charset; UTF-8 first, then Latin-1
    # byte for byte, so that no input can raise and no byte is lost.
    try:
        return raw.decode("utf-8"), "utf-8", problems
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1", problems


#: Header fields that only trace a message's way (relays, signatures, their checks):
#: no layer reads them, and a mail loop can pile up hundreds of thousands of them
#: before the notice. Past the read limit they are left out, so that the header
#: fields that matter and the notice still fit.
TRACE_FIELDS = frozenset(
    {
        "received",
        "x-received",
        "received-spf",
        "dkim-signature",
        "x-google-dkim-signature",
        "domainkey-signature",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "authentication-results",
    }
)
#: A header block longer than this, in a message past the read limit, loses its
#: trace fields (real ones take a few kilobytes).
_MAX_HEADER_BYTES = MAX_PARSE_BYTES // 4


def _within_limit(raw: bytes, problems: list[str]) -> bytes:
    """A message longer than MAX_PARSE_BYTES, cut to that: its start, and when its
    header block alone is too long, the header block without its trace fields and
    then the start of the body. Every cut is said in `problems`."""
    end = _header_end(raw)
    if end > _MAX_HEADER_BYTES:
        head, dropped = _without_trace_fields(raw[:end])
        if dropped:
            problems.append(
                f"header block of {end} bytes: {dropped} trace fields (Received and the"
                " like) left out"
            )
        raw = head + raw[end:]
        if len(raw) <= MAX_PARSE_BYTES:
            return raw
    # Cut at a line's end: the cut line's last word is no word of the message (an
    # address cut to "user@example.n" would be another address).
    cut = raw[:MAX_PARSE_BYTES]
    problems.append(CUT_PROBLEM)
    return cut[: cut.rfind(b"\n") + 1] or cut


def _header_end(raw: bytes) -> int:
    """Where the top header block ends (its blank line); the whole length if never."""
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    return min(ends) + 1 if ends else len(raw)


def _without_trace_fields(head: bytes) -> tuple[bytes, int]:
    """A header block without its TRACE_FIELDS (continuation lines included), and
    how many were left out."""
    kept: list[bytes] = []
    dropped = 0
    keep = True
    for line in head.splitlines(keepends=True):
        if line[:1] not in (b" ", b"\t"):
            name = line.partition(b":")[0].strip().lower()
            keep = name.decode("latin-1") not in TRACE_FIELDS
            dropped += not keep
        if keep:
            kept.append(line)
    return b"".join(kept), dropped


def read(raw: bytes | str) -> Mail:
    """Build the `Mail` view of a message; never raises for any input."""
    text, encoding, problems = decoded(raw)
    try:
        return _Reader(text, encoding).mail(problems)
    except Exception as exc:  # a bug of ours must not lose the message
        problems.append(f"MIME reader failed ({exc.__class__.__name__}: {exc}); read by flanker")
    try:
        return from_flanker(text, problems)
    except Exception as exc:  # flanker raises many types on damaged MIME
        problems.append(f"damaged MIME ({exc.__class__.__name__}: {exc}); read leniently")
    try:
        return from_stdlib(text, problems)
    except Exception as exc:  # the stdlib parser is lenient, but not proven total
        problems.append(f"unreadable MIME ({exc.__class__.__name__}); read as plain text")
    head, _, body = text.partition("\n\n")
    return Mail(
        Headers(_split_header_block(head)), (Part("text/plain", body),), problems=tuple(problems)
    )


# --- the fast reader -------------------------------------------------------------


class _Reader:
    """One pass over a message: its leaves outside the original, in order."""

    def __init__(self, text: str, encoding: str) -> None:
        self.text = text
        self.encoding = encoding  # of `text`, to recover a part's bytes
        self.parts: list[Part] = []
        self.original = Headers()
        self.original_raw = ""
        self.problems: list[str] = []
        self.count = 0

    def mail(self, problems: list[str]) -> Mail:
        fields, start = _fields(self.text, 0)
        headers = Headers._read(fields)
        self._entity(fields, self.text, start, 0)
        problems.extend(self.problems)
        return Mail(headers, tuple(self.parts), self.original, self.original_raw, tuple(problems))

    def _entity(self, fields: list[list[str]], text: str, start: int, depth: int) -> None:
        ctype, params = _content_type(_raw_field(fields, "content-type")[:_MAX_CONTENT_TYPE])
        if ctype.startswith("multipart/"):
            if depth >= _MAX_DEPTH:
                self.problems.append(f"multipart nested deeper than {_MAX_DEPTH}: not read")
                return
            boundary = params.get("boundary", "") or _guess_boundary(text, start)
            bodies = _split_multipart(text, start, boundary)
            if bodies:
                for body_start, body_end in bodies:
                    self.count += 1
                    if self.count > _MAX_PARTS:
                        self.problems.append(f"more than {_MAX_PARTS} parts: the rest not read")
                        return
                    body = text[body_start:body_end]
                    part_fields, part_start = _fields(body, 0)
                    self._entity(part_fields, body, part_start, depth + 1)
                return
            # A multipart whose boundary never appears: its body is the text.
            self.problems.append(f"{ctype} without its boundary: read as plain text")
            ctype = "text/plain"
        cte = _raw_field(fields, "content-transfer-encoding").strip().lower()
        if ctype in _ORIGINAL_TYPES:
            if not self.original:
                self._original(cte, text[start:])
        elif ctype.startswith(_READABLE):
            charset = params.get("charset", "") if ctype.startswith("text/") else ""
            self.parts.append(Part(ctype, self._part_text(text[start:], cte, charset)))

    def _original(self, cte: str, body: str) -> None:
        if cte in ("base64", "quoted-printable"):
            # Only the start is needed: decode no more than what is kept.
            body = self._part_text(body[: 2 * MAX_ORIGINAL_CHARS], cte, "")
        fields, _ = _fields(body, 0, lenient=True)
        self.original = Headers._read(fields)
        self.original_raw = body[:MAX_ORIGINAL_CHARS]

    def _part_text(self, body: str, cte: str, charset: str) -> str:
        """A body's text: its transfer encoding undone, then its charset. The message's
        own decoding stands where it holds: no transfer encoding, a charset that writes
        ASCII as ASCII, and ASCII text or a message that was valid UTF-8 throughout
        (see `_text`). Text that names no charset but carries ISO-2022 escapes
        (Japanese notices of old MTAs) is ISO-2022-JP."""
        if not charset and _ISO_2022_ESCAPE in body:
            charset = "iso-2022-jp"
        if cte == "base64":
            return _text(_base64(body), charset)
        if cte == "quoted-printable":
            return _text(binascii.a2b_qp(body.encode(self.encoding)), charset)
        if _keeps_ascii(_codec(charset)) and (self.encoding == "utf-8" or body.isascii()):
            return body
        return _text(body.encode(self.encoding), charset)


def _fields(text: str, pos: int, lenient: bool = False) -> tuple[list[list[str]], int]:
    """The header fields at `pos` in `text` ([name, line, continuation...] each) and
    where the body starts: after the first blank line, or at the first line that is
    neither a field nor a continuation. A line without indent is still a continuation
    when it carries a parameter (`boundary="..."` on a line of its own, a common
    break) or follows a field that ends in ";". `lenient` skips leading lines that
    are not fields, blank ones included (quoted headers in text, an original after a
    stray blank line); an mbox "From " line is always skipped.
    """
    items: list[list[str]] = []
    end = len(text)
    while pos < end:
        blank = text.find("\n\n", pos)
        stop = end if blank < 0 else blank
        for line in text[pos:stop].split("\n"):
            if not line:  # a blank line at `pos` (the block is split at the next one)
                if items or not lenient:
                    return items, pos + 1
            elif line[0] in " \t":
                if items:
                    items[-1].append(line)
                elif not lenient:
                    return items, pos
            else:
                colon = line.find(":")
                name = line[:colon].rstrip(" \t") if colon > 0 else ""
                if name and " " not in name and "\t" not in name and "=" not in name:
                    items.append([name, line[colon + 1 :]])
                elif items and (_is_parameter(line) or items[-1][-1].rstrip().endswith(";")):
                    items[-1].append(line)
                elif items or not (lenient or line.startswith("From ")):
                    return items, pos
            pos += len(line) + 1
        if items or not lenient:
            return items, min(pos + 1, end)
    return items, end


def _is_parameter(line: str) -> bool:
    name, sep, _ = line.partition("=")
    name = name.strip()
    return bool(sep and name) and " " not in name


def _raw_field(fields: list[list[str]], name: str) -> str:
    """The first field of that name (lower-case ASCII), unfolded, encoded words left
    as they are. Only names with its first letter are lower-cased and compared (no
    other character lower-cases to an ASCII letter but its capital, and the Kelvin
    sign to k)."""
    first = (name[0], name[0].upper(), "\u212a" if name[0] == "k" else name[0])
    for f in fields:
        if f[0][:1] in first and f[0].lower() == name:
            return " ".join(" ".join(f[1:]).split())
    return ""


def _field_value(f: list[str]) -> str:
    value = f[1] if len(f) == 2 else " ".join(f[1:])
    value = " ".join(value.split()) if "\t" in value or len(f) > 2 else value.strip()
    return _unfold(_decode_words(value)) if "=?" in value else value


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    """Media type (lower-case; text/plain when absent or malformed) and parameters
    (lower-case names, first occurrence wins, quotes and escapes removed)."""
    head, _, rest = value.partition(";")
    ctype = head.strip().lower()
    if "/" not in ctype:
        ctype = "text/plain"
    elif " " in ctype or "(" in ctype:  # a comment or junk after the type
        ctype = ctype.split()[0].partition("(")[0]
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    while pos < end:
        eq = rest.find("=", pos)
        if eq < 0:
            break
        name = rest[pos:eq].rpartition(";")[2].strip().lower()
        pos = eq + 1
        while pos < end and rest[pos] in " \t":
            pos += 1
        if rest[pos : pos + 1] == '"':
            value, pos = _quoted(rest, pos + 1)
            semi = rest.find(";", pos)
        else:
            semi = rest.find(";", pos)
            words = rest[pos : end if semi < 0 else semi].split()
            value = words[0] if words else ""
        params.setdefault(name, value)
        pos = end if semi < 0 else semi + 1
    return ctype, params


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """A quoted string's content from `pos` (after the opening quote) and the position
    after its closing quote; an unclosed string runs to the end."""
    out: list[str] = []
    close = text.find('"', pos)
    while True:
        stop = len(text) if close < 0 else close
        slash = text.find("\\", pos, stop)
        if slash < 0 or slash + 1 >= len(text):
            out.append(text[pos:stop])
            return "".join(out), stop + 1
        out.append(text[pos:slash])
        out.append(text[slash + 1])
        pos = slash + 2
        if slash + 1 == close:  # an escaped quote: the string goes on
            close = text.find('"', pos)


def _split_multipart(text: str, start: int, boundary: str) -> list[tuple[int, int]]:
    """(start, end) of each body part of the multipart body at `start`: between
    `--boundary` lines, up to a `--boundary--` line or the end of the text
    (a missing closing line is common in cut-off bounces). Preamble and epilogue
    are dropped; no part at all when the boundary never appears; one more part
    than the reader takes at most."""
    if not boundary:
        return []
    dash = "--" + boundary
    spans: list[tuple[int, int]] = []
    opened = -1  # where the current part's body starts
    pos = start if text.startswith(dash, start) else _line_at(text, dash, start)
    while pos >= 0:
        eol = text.find("\n", pos)
        if eol < 0:
            eol = len(text)
        after = text[pos + len(dash) : eol]
        closing = after.startswith("--")
        if closing or not after.strip():
            if opened >= 0:
                spans.append((opened, max(opened, pos - 1)))
            if closing or len(spans) > _MAX_PARTS:
                return spans
            opened = eol + 1
        pos = _line_at(text, dash, eol)
    if opened >= 0:
        spans.append((min(opened, len(text)), len(text)))
    return spans


def _guess_boundary(text: str, start: int) -> str:
    """The boundary of a multipart that does not name one: the first `--token`
    line of its body that comes again (broken mailers drop the parameter but
    still write the lines). "" when there is none."""
    pos = start if text.startswith("--", start) else _line_at(text, "--", start)
    for _ in range(_MAX_GUESSES):
        if pos < 0:
            return ""
        eol = text.find("\n", pos)
        token = text[pos + 2 : eol if eol >= 0 else len(text)].rstrip()
        if 0 < len(token) <= 70 and " " not in token and _line_at(text, "--" + token, eol) >= 0:
            return token
        pos = _line_at(text, "--", eol) if eol >= 0 else -1
    return ""


def _line_at(text: str, start: str, pos: int) -> int:
    """Where the next line that begins with `start` begins, from `pos` on; -1 if none."""
    found = text.find("\n" + start, pos)
    return found + 1 if found >= 0 else -1


_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64)


def _base64(body: str) -> bytes:
    """Decode base64 the way mail clients do: ignore what is not base64, mend the
    padding, never fail."""
    try:
        return binascii.a2b_base64(body)
    except (binascii.Error, ValueError):  # stray characters, bad padding, non-ASCII
        data = body.encode("ascii", "ignore").translate(None, _NOT_BASE64)
        data = data[: len(data) - 1] if len(data) % 4 == 1 else data
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


#: Charset names in mail that Python's codecs do not know under that name.
_CHARSET_ALIASES = {
    "x-sjis": "cp932",
    "x-euc-jp": "euc_jp",
    "iso-8859-8-i": "iso8859-8",
    "x-unicode-2-0-utf-8": "utf-8",
}
#: Supersets to try when the declared charset cannot decode the bytes (mail
#: software writes Windows extensions under the standard name).
_SUPERSETS = {
    "ascii": ("cp1252",),
    "iso2022_jp": ("cp932", "euc_jp"),
    "shift_jis": ("cp932",),
    "euc_kr": ("cp949",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
}
#: Codecs that are not charsets of mail text, or that cost more than linear time.
_REFUSED = frozenset({"idna", "punycode", "undefined", "raw_unicode_escape", "unicode_escape"})


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str:
    """Python's name of a charset; UTF-8 for none, and for what is unknown or unsuitable."""
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL byte in the name is data too
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return "utf-8"
    return info.name


#: Every ASCII byte, and the shift sequences of the 7-bit charsets (ISO-2022, UTF-7, HZ).
_ASCII_PROBE = bytes(range(128)) + b"\x1b$B!!\x1b(B \x1b$)C\x0e!!\x0f +AGE- ~{!!~}"


@functools.lru_cache(maxsize=64)
def _keeps_ascii(codec: str) -> bool:
    """Whether a codec reads ASCII bytes as the same characters (ISO-2022-JP, UTF-7,
    HZ, UTF-16 and EBCDIC do not: there ASCII text still needs decoding)."""
    return _ASCII_PROBE.decode(codec, "replace") == _ASCII_PROBE.decode("ascii")


def _text(data: bytes, charset: str) -> str:
    """Bytes as text; never raises. Valid UTF-8 is read as UTF-8 whatever the label
    says (mailers label UTF-8 as ISO-8859-1 or US-ASCII; other text is seldom valid
    UTF-8 by chance), except under 7-bit charsets such as ISO-2022-JP, whose ASCII
    bytes mean other characters. Then the declared charset, then its known
    supersets, then the declared charset with replacement characters (Latin-1 byte
    for byte when none was declared)."""
    codec = _codec(charset)
    first = ("utf-8", codec) if _keeps_ascii(codec) else (codec, "utf-8")
    for name in (*first, *_SUPERSETS.get(codec, ())):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return data.decode(codec, "replace") if charset else data.decode("latin-1")


#: An RFC 2047 encoded word: =?charset?B|Q?text?= (no nested quantifiers).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words: adjacent words in one charset are joined
    before decoding (a multibyte character may be split between them), the
    whitespace between encoded words is dropped, and what does not have the shape
    of an encoded word stays as it came."""
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset = match[1].partition("*")[0]  # RFC 2231 language suffix
        adjacent = pos > 0 and not between.strip()
        if pending and not (adjacent and charset.lower() == pending_charset.lower()):
            out.append(_text(b"".join(pending), pending_charset))
            pending = []
        if not adjacent:
            out.append(between)
        word = match[3]
        if match[2] in "bB":
            pending.append(_base64(word))
        else:
            pending.append(binascii.a2b_qp(word.encode("ascii", "replace"), header=True))
        pending_charset = charset
        pos = match.end()
    if pending:
        out.append(_text(b"".join(pending), pending_charset))
    out.append(value[pos:])
    return "".join(out)


def _split_header_block(block: str) -> list[tuple[str, str]]:
    """Header lines of a text block (continuation lines folded in); stops at the
    first line that is neither a header nor a continuation."""
    fields, _ = _fields(block, 0, lenient=True)
    return [(f[0], _field_value(f)) for f in fields]


def header_block(text: str) -> Headers:
    """Headers found at the start of a text block (inline quoted originals),
    decoded only as their names are looked up."""
    return Headers._read(_fields(text, 0, lenient=True)[0])


def _unfold(value: str) -> str:
    if "\n" in value or "\t" in value:
        return " ".join(value.split())
    return value.strip()


# --- the fallbacks: flanker, the stdlib -------------------------------------


def from_flanker(text: str, problems: list[str]) -> Mail:
    import logging

    logging.getLogger("flanker").setLevel(logging.CRITICAL)  # it logs what it refuses
    from flanker import mime  # imported lazily: its grammar tables take a while to build

    message = mime.from_string(text)
    parts: list[Part] = []
    original = Headers([])
    original_raw = ""
    for part in message.walk(with_self=True, skip_enclosed=True):
        ctype = part.content_type.value.lower()
        if ctype.startswith("multipart/"):
            continue
        enclosed = getattr(part, "enclosed", None)
        if ctype in _ORIGINAL_TYPES:
            if enclosed is not None and not original:
                original = Headers(list(enclosed.headers.items()))
                original_raw = enclosed.to_string()[:MAX_ORIGINAL_CHARS]
            elif not original and isinstance(part.body, str):
                original = header_block(part.body.partition("\n\n")[0])
            continue
        if ctype.startswith(_READABLE):
            body = part.body
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            parts.append(Part(ctype, body if isinstance(body, str) else ""))
    return Mail(
        Headers(list(message.headers.items())),
        tuple(parts),
        original,
        original_raw,
        tuple(problems),
    )


def from_stdlib(text: str, problems: list[str]) -> Mail:
    import email
    import email.policy  # imported lazily: the last resort is rarely needed

    message = email.message_from_string(text, policy=email.policy.compat32)
    parts: list[Part] = []
    original = Headers([])
    for part in _walk_outside_original(message):
        ctype = part.get_content_type()
        if ctype in _ORIGINAL_TYPES:
            if not original:
                original = _stdlib_original(part)
            continue
        if ctype.startswith("multipart/"):
            # A multipart whose boundary never appears: its body is the text.
            ctype = "text/plain"
        if ctype.startswith(_READABLE):
            parts.append(Part(ctype, _stdlib_text(part)))
    return Mail(_stdlib_headers(message), tuple(parts), original, problems=tuple(problems))


def _walk_outside_original(message: StdMessage) -> Iterator[StdMessage]:
    payload = message.get_payload()
    if message.get_content_maintype() == "multipart" and isinstance(payload, list):
        for sub in payload:
            if not isinstance(sub, str):
                yield from _walk_outside_original(sub)
    else:
        yield message


def _stdlib_original(part: StdMessage) -> Headers:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and not isinstance(payload[0], str):
        return _stdlib_headers(payload[0])
    return header_block(_stdlib_text(part).partition("\n\n")[0])


def _stdlib_headers(message: StdMessage) -> Headers:
    return Headers([(k, _decode_words(_unfold(str(v)))) for k, v in message.items()])


def _stdlib_text(part: StdMessage) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, list):  # a status part, read as a list of field blocks
            return "".join(cast("StdMessage", block).as_string() for block in raw)
        return raw if isinstance(raw, str) else ""
    return _text(cast(bytes, payload), part.get_content_charset() or "")
