"""The exceptions bounced raises on purpose, in one hierarchy.

Callers catch `BouncedError` to handle every expected failure in one place (the
CLI turns each into one plain line and an exit code); anything else escaping
is a bug. `parse()` never raises at all: these concern configuration, the rules
files, addresses, the store, the sending log and the retry dispatch.

    BouncedError
    ├── ConfigError          a setting that cannot be read
    ├── RulesError           a rules file that is malformed (also a ValueError)
    ├── InvalidAddress       text that is no address (also a ValueError)
    ├── UnknownAddress       an address the store never saw (also a LookupError)
    ├── UnknownSelection     a selection name that does not exist (also a LookupError)
    ├── UnknownPlan          a retry plan id that does not exist (also a LookupError)
    ├── UnknownMessage       an inbox message id that does not exist (also a LookupError)
    ├── DatabaseUnavailable  the database cannot be reached or opened
    ├── RefusedValue         a value the database cannot store (also a ValueError)
    ├── DispatchError        a retry that did not go out
    ├── UnknownToken         an API token name that is not live (also a LookupError)
    ├── UnreadableInput      a list to clean that cannot be read at all
    ├── WebhookRefused       a provider webhook that failed verification
    └── UnreadableImport     a suppression-list file of none of its format's shapes
"""

from __future__ import annotations

__all__ = [
    "BouncedError",
    "ConfigError",
    "DatabaseUnavailable",
    "DispatchError",
    "InvalidAddress",
    "RefusedValue",
    "RulesError",
    "UnknownAddress",
    "UnknownMessage",
    "UnknownPlan",
    "UnknownSelection",
    "UnknownToken",
    "UnreadableImport",
    "UnreadableInput",
    "WebhookRefused",
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


class UnknownPlan(BouncedError, LookupError):
    """A retry plan id that does not exist."""


class UnknownMessage(BouncedError, LookupError):
    """No inbox message has this id."""


class RulesError(BouncedError, ValueError):
    """A rules file is malformed (unknown reason or key, duplicate phrase, bad pattern)."""


class DispatchError(BouncedError):
    """A retry that did not go out; `permanent` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class UnknownToken(BouncedError, LookupError):
    """No live API token has this name."""


class UnreadableInput(BouncedError):
    """A list given to `bounced clean` that cannot be read at all (not the format it
    looks like, no such column); rows that cannot be read are reported, not raised."""


class RefusedValue(BouncedError, ValueError):
    """A value the database cannot store (PostgreSQL refuses NUL characters in text):
    the caller's input, not the database, is at fault."""


class WebhookRefused(BouncedError):
    """A provider webhook request that failed verification (bounced.providers): bad or
    missing signature or credentials, a stale or replayed one, an unexpected topic or
    source. `status` is the HTTP answer (401, 403; 406 for a payload never to resend)."""

    def __init__(self, provider: str, reason: str, *, status: int = 403) -> None:
        super().__init__(f"{provider} webhook refused: {reason}")
        self.provider = provider
        self.reason = reason
        self.status = status


class UnreadableImport(BouncedError):
    """A suppression-list file that is none of the shapes its format has (`bounced import`)."""
