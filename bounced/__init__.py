"""bounced: bounce processing and suppression lists."""

from typing import TYPE_CHECKING

from bounced.dsn import Bounce, BounceClass, Kind, Reason, Report, parse

if TYPE_CHECKING:
    from bounced.api import Suppressions

__all__ = ["Bounce", "BounceClass", "Kind", "Reason", "Report", "Suppressions", "parse"]


def __getattr__(name: str) -> object:
    # The store pulls in SQLAlchemy and Alembic; `import bounced` for parsing alone
    # (and every parse worker process) should not pay for them.
    if name == "Suppressions":
        from bounced.api import Suppressions

        return Suppressions
    raise AttributeError(f"module 'bounced' has no attribute {name!r}")
