"""Email addresses in one canonical form, decided in one place.

Everything that stores or looks up an address goes through `normalize`, so
`<John.Doe@EXAMPLE.com>`, `mailto:john.doe@example.com` and `john.doe@example.com`
are one row. The canonical form is the local part (lower-cased unless
`case_sensitive_local_part`) and the domain lower-cased and IDNA-encoded
(`xn--…`), so one address has one spelling whichever way a bounce wrote it.

Validation is email-validator's syntax check (never DNS: a domain that is gone
is exactly what a bounce list records). It costs ~20 µs, which would dominate
a million-address check, so plain ASCII addresses that it certainly accepts
take a regex fast path; a property test holds the two paths to the same answer.
email-validator is imported on the first address that needs it: its import compiles
Unicode-range patterns worth a tenth of a store command's start-up (250 M
instructions), which a command that only sees plain addresses never needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bounced.errors import InvalidAddress

__all__ = [
    "SPECIAL_USE_DOMAINS",
    "domain_of",
    "normalize",
    "normalize_allow_entry",
    "normalize_many",
    "split_plain",
    "split_validated",
    "strip_junk",
]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]++"
#: A DNS label: letters, digits and inner hyphens (possessive, checked by lookarounds:
#: no backtracking, which keeps the hot path near half a microsecond).
_LABEL = r"(?!-)[A-Za-z0-9-]++(?<!-)"
#: email-validator's SPECIAL_USE_DOMAIN_NAMES (a test holds the two equal), which it
#: refuses as domains: written out so that the fast path does not import it.
SPECIAL_USE_DOMAINS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_NOT_SPECIAL = "".join(
    r"(?<!\." + "".join(f"[{c}{c.upper()}]" for c in name) + ")" for name in SPECIAL_USE_DOMAINS
)
#: Plain ASCII addresses: dot-atom local part, a domain of two or more labels whose
#: top-level label ends with a letter and is not a special-use name.
_SIMPLE = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*+@{_LABEL}(?:\.{_LABEL})++(?<=[A-Za-z]){_NOT_SPECIAL}"
)
#: The same, for one line of a batch joined with newlines (nothing in it matches "\n").
_SIMPLE_LINES = re.compile(f"^(?:{_SIMPLE.pattern})$", re.MULTILINE)
_PAIRS = {"<": ">", '"': '"', "'": "'", "`": "`", "(": ")", "[": "]"}
_PREFIXES = ("mailto:", "rfc822;", "smtp:")
_TRAILING = ".,;"


def strip_junk(text: str) -> str:
    """Remove what surrounds an address in the wild: whitespace, <>, quotes, mailto:,
    a display name before <...>, trailing punctuation. Repeats until nothing changes
    because junk nests (`"<mailto:a@b.c>",`)."""
    previous = None
    while text != previous:
        previous = text
        text = text.strip().rstrip(_TRAILING).strip()
        if text.endswith(">") and "<" in text and not text.startswith("<"):
            text = text[text.rindex("<") :]
        if len(text) > 1 and _PAIRS.get(text[0]) == text[-1]:
            inner = text[1:-1]
            # `"a b"@example.com` is a quoted local part, not a quoted address.
            if text[0] != '"' or "@" in inner:
                text = inner
        lowered = text.lower()
        for prefix in _PREFIXES:
            if lowered.startswith(prefix):
                text = text[len(prefix) :]
                if prefix == "mailto:":
                    text = text.partition("?")[0]
                break
    return text


def _plain(text: str) -> bool:
    """True for a plain ASCII address that email-validator certainly accepts as it is
    (up to case). Labels with "--" (IDNA's business) and long parts go the slow way."""
    if _SIMPLE.fullmatch(text) is None or "--" in text:
        return False
    at = text.index("@")
    return at <= 64 and len(text) - at <= 64


def split_plain(text: str) -> tuple[str, str] | None:
    """(local, ascii domain) for a plain address, else None."""
    if not _plain(text):
        return None
    local, _, domain = text.partition("@")
    return local, domain.lower()


def split_validated(text: str, original: str | None = None) -> tuple[str, str]:
    """(local, ascii domain) as email-validator reads them; errors name the `original` text."""
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(
            text, check_deliverability=False, allow_quoted_local=True, allow_display_name=False
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(text if original is None else original, str(exc)) from None
    return result.local_part, result.ascii_domain


def _cleaned(text: str) -> tuple[str, str]:
    cleaned = strip_junk(text)
    if not cleaned:
        raise InvalidAddress(text, "empty")
    return split_plain(cleaned) or split_validated(cleaned, text)


def normalize(text: str, *, case_sensitive_local_part: bool = False) -> str:
    """The canonical form of an address, or InvalidAddress saying why it is not one."""
    if not isinstance(text, str):
        raise InvalidAddress(repr(text), "not text")
    # Text the fast path accepts has no junk to strip (no spaces, brackets, colons or
    # semicolons, no trailing punctuation), so the common case skips strip_junk.
    if _plain(text):
        if not case_sensitive_local_part:
            return text.lower()
        at = text.index("@")
        return text[:at] + text[at:].lower()
    local, domain = _cleaned(text)
    if not case_sensitive_local_part:
        local = local.lower()
    return f"{local}@{domain}"


def normalize_many(
    texts: Iterable[str], *, case_sensitive_local_part: bool = False
) -> list[str | InvalidAddress]:
    """`normalize` over a batch of addresses: each result is the address or the error.

    The bulk check's hot path. A batch of plain addresses (the usual case: a mailing
    list) is matched by one regex pass over the joined batch and lower-cased at once;
    an address of at most 64 characters cannot break a length limit. Any other batch
    goes address by address, with the same fast test first.
    """
    texts = list(texts)
    if not case_sensitive_local_part and _all_plain(texts):
        return "\n".join(texts).lower().split("\n")  # type: ignore[return-value]
    match = _SIMPLE.fullmatch
    out: list[str | InvalidAddress] = []
    for text in texts:
        plain = type(text) is str and len(text) <= 64 and "--" not in text and match(text)
        if plain and not case_sensitive_local_part:
            out.append(text.lower())
            continue
        try:
            out.append(normalize(text, case_sensitive_local_part=case_sensitive_local_part))
        except InvalidAddress as exc:
            out.append(exc)
    return out


def _all_plain(texts: list[str]) -> bool:
    try:
        joined = "\n".join(texts)
    except TypeError:
        return False
    return (
        bool(texts)
        and "--" not in joined
        and max(map(len, texts)) <= 64
        and joined.count("\n") == len(texts) - 1
        and len(_SIMPLE_LINES.findall(joined)) == len(texts)
    )


def normalize_allow_entry(text: str, *, case_sensitive_local_part: bool = False) -> str:
    """An allow-list entry: an address, or a whole domain written `@example.com`."""
    cleaned = strip_junk(text)
    if cleaned.startswith("@"):
        try:
            return "@" + domain_of(normalize("postmaster" + cleaned))
        except InvalidAddress as exc:  # said of the domain as written, not of postmaster@
            reason = exc.reason if cleaned[1:] else "no domain after the @ (write @example.com)"
            raise InvalidAddress(text, reason) from None
    return normalize(cleaned, case_sensitive_local_part=case_sensitive_local_part)


def domain_of(address: str) -> str:
    """The domain of a normalised address (the part after the last @)."""
    return address.rpartition("@")[2]
