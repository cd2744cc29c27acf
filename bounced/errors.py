"""The exceptions bounced raises on purpose, in one hierarchy.

Callers catch `BouncedError` to handle every expected failure in one place (the
CLI turns each into one plain line and an exit code); anything else escaping
is a bug. `parse()` never raises at all: these concern configuration, addresses
and the store.
"""

from __future__ import annotations

__all__ = [
    "BouncedError",
    "ConfigError",
    "DatabaseUnavailable",
    "InvalidAddress",
    "UnknownAddress",
    "UnknownSelection",
]


class BouncedError(Exception):
    """Base of every error bounced raises deliberately."""


class ConfigError(BouncedError):
    """A setting is unknown or cannot be read as its type (says which and where)."""


class InvalidAddress(BouncedError, ValueError):
    """Text that is not an email address; `reason` says what is wrong with it."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{text!r} is not a valid address: {reason}")
        self.text = text
        self.reason = reason


class UnknownAddress(BouncedError, LookupError):
    """An admin action named addresses that the store has never seen."""

    def __init__(self, addresses: list[str]) -> None:
        shown = ", ".join(addresses[:5]) + (" ..." if len(addresses) > 5 else "")
        super().__init__(f"not in the store: {shown}")
        self.addresses = addresses


class UnknownSelection(BouncedError, LookupError):
    """A selection name that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no selection named {name!r}")
        self.name = name


class DatabaseUnavailable(BouncedError):
    """The database URL is wrong or the server cannot be reached."""
