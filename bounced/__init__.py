"""bounced: bounce processing and suppression lists."""

from bounced.dsn import Bounce, BounceClass, Kind, Reason, Report, parse

__all__ = ["Bounce", "BounceClass", "Kind", "Reason", "Report", "parse"]
