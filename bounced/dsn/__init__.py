"""Message parsing: raw bytes of a returned message in, a `Report` out.

No I/O, no database and no configuration beyond the compiled rules, so the
same function serves the CLI, the listener and applications.
"""

from bounced.dsn.parse import parse
from bounced.dsn.report import (
    DEFAULT_HARD_REASONS,
    TEXT_FACTS,
    Bounce,
    BounceClass,
    Kind,
    Reason,
    Report,
)

__all__ = [
    "DEFAULT_HARD_REASONS",
    "TEXT_FACTS",
    "Bounce",
    "BounceClass",
    "Kind",
    "Reason",
    "Report",
    "parse",
]
