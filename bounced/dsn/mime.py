"""Read a raw message into the few things the layers need: top headers, the
decoded human-readable and machine-readable parts, and the returned original.

flanker does the MIME work; when it refuses a damaged message the stdlib
`email` package (which never refuses) takes over, and when both fail the whole
message is treated as one text part. Only what the layers read is decoded: the
returned original contributes its headers, never its (possibly 25 MB) body.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message as StdMessage

#: Bounce notices and status parts sit at the start of a message; past this many
#: bytes there is only the returned original. Parsing stops here so that neither
#: a huge attachment nor pathological text can cost more than a bounded amount.
MAX_PARSE_BYTES = 1 << 20

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

#: A returned original that is itself a bounce is parsed again; this much of it is kept.
MAX_ORIGINAL_CHARS = 256 * 1024

logging.getLogger("flanker").setLevel(logging.CRITICAL)


class Headers:
    """Case-insensitive, multi-valued header view with decoded, unfolded values."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = [(str(k).lower(), _unfold(str(v))) for k, v in items]

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: str) -> bool:
        return any(key == name.lower() for key, _ in self._items)

    def __bool__(self) -> bool:
        return bool(self._items)


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


def normalise(raw: bytes | str) -> tuple[str, list[str]]:
    """Bytes or text in, LF-only text out, bounded in size; plus what was odd."""
    problems: list[str] = []
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_PARSE_BYTES:
        raw = raw[:MAX_PARSE_BYTES]
        problems.append(f"message longer than {MAX_PARSE_BYTES} bytes: read the start only")
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # Headers and 8-bit bodies arrive in any charset; UTF-8 first, then Latin-1
    # byte for byte, so that no input can raise and no byte is lost.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text, problems


def read(raw: bytes | str) -> Mail:
    """Build the `Mail` view of a message; never raises for any input."""
    text, problems = normalise(raw)
    try:
        return _from_flanker(text, problems)
    except Exception as exc:  # flanker raises many types on damaged MIME
        problems.append(f"damaged MIME ({exc.__class__.__name__}: {exc}); read leniently")
    try:
        return _from_stdlib(text, problems)
    except Exception as exc:  # the stdlib parser is lenient, but not proven total
        problems.append(f"unreadable MIME ({exc.__class__.__name__}); read as plain text")
    head, _, body = text.partition("\n\n")
    return Mail(
        Headers(_split_header_block(head)), (Part("text/plain", body),), problems=tuple(problems)
    )


def _from_flanker(text: str, problems: list[str]) -> Mail:
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
                original = Headers(_split_header_block(part.body.partition("\n\n")[0]))
            continue
        if ctype.startswith(_READABLE):
            # flanker reads message/* report parts as enclosed messages: their
            # fields are then the enclosed "headers", their text its string.
            body = part.body if enclosed is None else enclosed.to_string()
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


def _from_stdlib(text: str, problems: list[str]) -> Mail:
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
    if message.get_content_type() in _ORIGINAL_TYPES:
        yield message
        return
    payload = message.get_payload()
    if message.is_multipart() and isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, StdMessage):
                yield from _walk_outside_original(sub)
    else:
        yield message


def _stdlib_original(part: StdMessage) -> Headers:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], StdMessage):
        return _stdlib_headers(payload[0])
    return Headers(_split_header_block(_stdlib_text(part).partition("\n\n")[0]))


def _stdlib_headers(message: StdMessage) -> Headers:
    return Headers([(k, _decode_words(str(v))) for k, v in message.items()])


def _stdlib_text(part: StdMessage) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # malformed encoded words: keep them as they came
        return value


def _split_header_block(block: str) -> list[tuple[str, str]]:
    """Header lines of a text block (continuation lines folded in); stops at the
    first line that is neither a header nor a continuation."""
    items: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and items:
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name.strip():
            if items:
                break
            continue
        items.append((name.strip(), _decode_words(value.strip())))
    return items


def header_block(text: str) -> Headers:
    """Headers found at the start of a text block (inline quoted originals)."""
    return Headers(_split_header_block(text))


def _unfold(value: str) -> str:
    if "\n" in value or "\t" in value:
        return " ".join(value.split())
    return value.strip()
