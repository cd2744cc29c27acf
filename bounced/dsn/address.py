"""The address reader: every address the parser takes from a notice, a status
field or a header passes through here, so each kind of junk around one is
undone in one place.

Real notices wrap addresses in more than angle brackets: Exchange and X.400
gateways write `SMTP=user@host`, `SMTP:user@host` or a whole O/R address
(`c=US;a= ;p=Org;o=Exchange;dda:SMTP=user@host;`), DSN fields keep their
`rfc822;` type, and mangled text leaves a stray quote before the local part
(`'user@host`) or punctuation after the domain. Top-level domains of one
letter are addresses too (RFC 5321 allows them; sanitised samples use them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["ADDRESS", "addresses", "clean_address", "encapsulated", "find_addresses"]

#: An address as it appears in bounce texts: liberal on the local part (it may
#: be internationalised), strict enough on the domain to skip IPs and hosts. No
#: address starts right after "=" (so `a=b@c` inside a VERP address is none).
ADDRESS = re.compile(
    r"(?<![\w.+=-])((?:\"[^\"\n]{1,64}\"|[\w.!#$%&'*+/=?^`{|}~-]{1,64})@(?:\[[0-9.:a-fA-F]+\]|[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}\.(?:[a-zA-Z]{1,63}|xn--[a-zA-Z0-9-]{1,59})))",
)
#: Exchange's and X.400's notation, which puts an address right after "=".
_SMTP_EQUALS = re.compile(r"smtp=", re.IGNORECASE)
#: Characters a mangled text leaves before a local part: never the address's own.
_LEADING_JUNK = "'`"
#: What an address that needs normalising starts with (junk, or a stray dot).
_FIRST_JUNK = frozenset("'`.")


def _unmarked(text: str) -> str:
    """The text with `SMTP=` blanked out (as many spaces: positions stay)."""
    if "=" in text and ("MTP=" in text or "mtp=" in text):
        return _SMTP_EQUALS.sub("     ", text)
    return text


def _normal(address: str) -> tuple[int, str]:
    """How many junk characters lead the address, and the address without them."""
    if address[0] not in _FIRST_JUNK:
        return 0, address
    local = address.partition("@")[0]
    junk = len(local) - len(local.lstrip(_LEADING_JUNK))
    if junk == len(local):  # nothing but the quote: that is the local part
        junk = 0
    return junk, address[junk:].strip(".")


def find_addresses(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, address) of every address in `text`, normalised."""
    for match in ADDRESS.finditer(_unmarked(text)):
        address = match.group(1)
        if address[0] in _FIRST_JUNK:
            junk, address = _normal(address)
            yield match.start(1) + junk, match.end(1), address
        else:
            yield match.start(1), match.end(1), address


def addresses(text: str) -> list[str]:
    """Every address in `text`, lower-cased, each once, in order."""
    if "@" not in text:
        return []
    return list(dict.fromkeys(_normal(a)[1].lower() for a in ADDRESS.findall(_unmarked(text))))


def clean_address(value: str) -> str:
    """The first address in a field value (inside `<...>`, quotes, a notation);
    empty when there is none."""
    match = ADDRESS.search(_unmarked(value)) if "@" in value else None
    return _normal(match.group(1))[1] if match else ""


def encapsulated(address: str) -> bool:
    """Whether an address is Exchange's encapsulation of another one
    (`IMCEAEX-_O=ORG_OU=..._CN=KIM@corp.example.com`, IMCEA + type): Exchange's
    name for a mailbox, never what a sender typed."""
    return address[:5].upper() == "IMCEA"
