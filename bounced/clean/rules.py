"""The data `bounced clean` works from: bounced/rules/clean.toml, validated once.

Which domains are common enough to suggest, which local parts are roles and which
header names mark the address column are data, so adding one is an edit to the
TOML file; a misspelt key or a wrong type is refused when the file is read, not
ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from bounced.errors import RulesError

__all__ = ["CleanRules", "header_key", "load_clean_rules", "parse_clean_rules"]

_FILE = "clean.toml"
_LISTS = ("common_domains", "role_local_parts", "address_headers")
_INTS = ("max_typo_distance",)


@dataclass(frozen=True, slots=True)
class CleanRules:
    common_domains: frozenset[str]
    max_typo_distance: int
    role_local_parts: frozenset[str]
    address_headers: frozenset[str]


def header_key(name: str) -> str:
    """A header cell as compared with `address_headers`: `E-Mail Address` -> `emailaddress`."""
    return "".join(c for c in name.lower() if c not in " -_.")


def parse_clean_rules(data: dict[str, Any], origin: str = _FILE) -> CleanRules:
    """CleanRules from the TOML table, or RulesError naming what is wrong."""
    unknown = set(data) - set(_LISTS) - set(_INTS)
    if unknown:
        raise RulesError(f"{origin}: unknown key(s) {sorted(unknown)}")
    missing = (set(_LISTS) | set(_INTS)) - set(data)
    if missing:
        raise RulesError(f"{origin}: missing key(s) {sorted(missing)}")
    for key in _LISTS:
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise RulesError(f"{origin}: {key} must be a list of non-empty strings")
    distance = data["max_typo_distance"]
    if isinstance(distance, bool) or not isinstance(distance, int) or not 0 <= distance <= 2:
        raise RulesError(f"{origin}: max_typo_distance must be 0, 1 or 2")
    return CleanRules(
        common_domains=frozenset(d.lower() for d in data["common_domains"]),
        max_typo_distance=distance,
        role_local_parts=frozenset(r.lower() for r in data["role_local_parts"]),
        address_headers=frozenset(header_key(h) for h in data["address_headers"]),
    )


@cache
def load_clean_rules() -> CleanRules:
    """The shipped rules (read once per process)."""
    text = resources.files("bounced.rules").joinpath(_FILE).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{_FILE}: {exc}") from None
    return parse_clean_rules(data)
