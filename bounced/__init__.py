"""bounced: bounce processing and suppression lists."""

from typing import TYPE_CHECKING

from bounced.dsn import Bounce, BounceClass, Kind, Reason, Report, parse

if TYPE_CHECKING:
    from bounced.clean import clean
    from bounced.db.filters import Filters
    from bounced.suppressions import Check, Ingested, Suppressions

__all__ = [
    "Bounce",
    "BounceClass",
    "Check",
    "Filters",
    "Ingested",
    "Kind",
    "Reason",
    "Report",
    "Suppressions",
    "clean",
    "parse",
]

#: Names served lazily: the store pulls in SQLAlchemy and Alembic, and `import bounced`
#: for parsing alone (and every parse worker process) should not pay for them.
_LAZY = {
    "Suppressions": "bounced.suppressions",
    "Check": "bounced.suppressions",
    "Ingested": "bounced.suppressions",
    "Filters": "bounced.db.filters",
    "clean": "bounced.clean",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bounced' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
