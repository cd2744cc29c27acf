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

__all__ = ["ADDRESS", "addresses", "clean_address", "find_addresses"]

#: An address as it appears in bounce texts: liberal on the local part (it may
#: be internationalised), strict enough on the domain to skip IPs and hosts.
ADDRESS = re.compile(
    r"(?<![\w.+=-])((?:\"[^\"\n]{1,64}\"|[\w.!#$%&'*+/=?^`{|}~-]{1,64})@(?:\[[0-9.:a-fA-F]+\]|[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}\.(?:[a-zA-Z]{1,63}|xn--[a-zA-Z0-9-]{1,59})))",
)
#: Notations that put an address after "=" or ":" (which the pattern above
#: refuses before an address, so `a=b@c` inside a VERP address is no address):
#: Exchange's proxy addresses and X.400 O/R addresses.
_NOTATION = re.compile(r"(?:\bdda:)?\bsmtp[=:](?=\S)|\bmailto:|\brfc822;", re.IGNORECASE)
#: Characters a mangled text leaves before a local part: never the address's own.
_LEADING_JUNK = "'`"


def _blanked(text: str) -> str:
    """The text with each notation replaced by as many spaces, so that positions
    in it are positions in the original."""
    if "=" not in text and ":" not in text and ";" not in text:
        return text
    return _NOTATION.sub(lambda m: " " * len(m.group(0)), text)


def find_addresses(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, address) of every address in `text`, normalised."""
    for match in ADDRESS.finditer(_blanked(text)):
        start, address = match.start(1), match.group(1)
        local = address.partition("@")[0]
        junk = len(local) - len(local.lstrip(_LEADING_JUNK))
        if junk == len(local):  # nothing but the quote: that is the local part
            junk = 0
        yield start + junk, match.end(1), address[junk:].strip(".")


def addresses(text: str) -> list[str]:
    """Every address in `text`, lower-cased, each once, in order."""
    return list(dict.fromkeys(a.lower() for _, _, a in find_addresses(text)))


def clean_address(value: str) -> str:
    """The first address in a field value (inside `<...>`, quotes, a notation);
    empty when there is none."""
    return next((a for _, _, a in find_addresses(value)), "")
