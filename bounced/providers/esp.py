"""The providers' own event types as data: `bounced/rules/esp.toml`, validated strictly
and compiled once.

A provider module builds the type keys of an event (most specific first) and asks
`EspRules.find` what they mean; what a provider calls its events is an edit to
the TOML file, not to code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from bounced.dsn import Kind, Reason
from bounced.errors import RulesError

__all__ = ["IGNORE", "PROVIDERS", "EspRules", "EspType", "load_esp", "parse_esp"]

#: Providers (and import formats) the file may name.
PROVIDERS = frozenset({"ses", "mailgun", "sendgrid", "postmark", "sparkpost", "brevo", "csv"})

#: The `kind` of an event bounced has no use for (opens, clicks, sends).
IGNORE = "ignore"

_KINDS = {
    "failed": Kind.FAILED,
    "delayed": Kind.DELAYED,
    "delivered": Kind.DELIVERED,
    "complaint": Kind.COMPLAINT,
    "autoreply": Kind.AUTOREPLY,
    IGNORE: None,
}
_ALWAYS = frozenset({"provider", "type", "kind"})
_FAILURE_KEYS = frozenset({"reason", "permanent", "priority"})
#: The keys a row of each kind may have besides _ALWAYS.
_EXTRA: dict[Kind | None, frozenset[str]] = {
    Kind.FAILED: _FAILURE_KEYS,
    Kind.DELAYED: _FAILURE_KEYS,
    Kind.COMPLAINT: frozenset({"feedback_type"}),
}


@dataclass(frozen=True, slots=True)
class EspType:
    """What one provider type means. `kind` None: an event to ignore. Failures and
    delays carry a reason, its priority and whether the type calls it permanent."""

    provider: str
    name: str
    kind: Kind | None
    reason: Reason | None = None
    permanent: bool = False
    priority: int = 0
    feedback_type: str = ""

    @property
    def rule(self) -> str:
        """The `rule` a row decided by this type names."""
        return f"esp:{self.provider}:{self.name}"


@dataclass(frozen=True, slots=True)
class EspRules:
    types: Mapping[tuple[str, str], EspType]

    def find(self, provider: str, keys: Iterable[str]) -> EspType | None:
        """The first of `keys` (most specific first) the provider's rows define."""
        for key in keys:
            if found := self.types.get((provider, key)):
                return found
        return None


def _row(entry: Any, index: int) -> EspType:
    where = f"esp.toml: type {index + 1}"
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: must be a table")
    missing = _ALWAYS - entry.keys()
    if missing:
        raise RulesError(f"{where}: missing {', '.join(sorted(missing))}")
    provider, name, kind_name = entry["provider"], entry["type"], entry["kind"]
    if provider not in PROVIDERS:
        raise RulesError(f"{where}: unknown provider {provider!r}")
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}: type must be non-empty text")
    if kind_name not in _KINDS:
        raise RulesError(f"{where}: unknown kind {kind_name!r} (known: {', '.join(_KINDS)})")
    kind = _KINDS[kind_name]
    if unknown := entry.keys() - _ALWAYS - _EXTRA.get(kind, frozenset()):
        raise RulesError(f"{where} ({name}): keys not allowed here: {', '.join(sorted(unknown))}")
    if kind not in (Kind.FAILED, Kind.DELAYED):
        return EspType(provider, name, kind, feedback_type=str(entry.get("feedback_type", "")))
    if missing := _FAILURE_KEYS - entry.keys():
        raise RulesError(f"{where} ({name}): a {kind_name} type needs {', '.join(sorted(missing))}")
    try:
        reason = Reason(entry["reason"])
    except ValueError:
        raise RulesError(f"{where} ({name}): unknown reason {entry['reason']!r}") from None
    permanent, priority = entry["permanent"], entry["priority"]
    if (
        not isinstance(permanent, bool)
        or isinstance(priority, bool)
        or not isinstance(priority, int)
    ):
        raise RulesError(f"{where} ({name}): permanent is true/false, priority an integer")
    return EspType(provider, name, kind, reason, permanent, priority)


def parse_esp(text: str) -> EspRules:
    """Compile the text of an esp.toml; RulesError names the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"esp.toml: {exc}") from None
    if unknown := data.keys() - {"type"}:
        raise RulesError(f"esp.toml: unknown tables {', '.join(sorted(unknown))}")
    types: dict[tuple[str, str], EspType] = {}
    for index, entry in enumerate(data.get("type", ())):
        row = _row(entry, index)
        if (row.provider, row.name) in types:
            raise RulesError(f"esp.toml: {row.provider} type {row.name!r} listed twice")
        types[row.provider, row.name] = row
    return EspRules(types)


@cache
def load_esp() -> EspRules:
    """The compiled esp.toml of the package, read once per process."""
    return parse_esp(resources.files("bounced.rules").joinpath("esp.toml").read_text("utf-8"))
