"""What a cleaning run found, counted: rows per status and per reason, the domains
DNS failed for, and the rows that could not be read (with their lines)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bounced.clean.kinds import CleanReason
from bounced.clean.pipeline import Cleaned

__all__ = ["DNS_REASONS", "Tally"]

#: Reasons that come from DNS (their domains are listed in the summary).
DNS_REASONS = frozenset(
    {
        CleanReason.NO_SUCH_DOMAIN,
        CleanReason.NULL_MX,
        CleanReason.NO_MAIL_SERVER,
        CleanReason.DNS_TIMEOUT,
    }
)


@dataclass(slots=True)
class Tally:
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    failed_domains: Counter[tuple[str, str]] = field(default_factory=Counter)
    unreadable: list[tuple[int, str]] = field(default_factory=list)

    def add(self, result: Cleaned) -> None:
        self.rows += 1
        self.statuses[result.status] += 1
        if not result.reason:
            return
        self.reasons[result.status, result.reason] += 1
        if result.reason in DNS_REASONS:
            domain = result.normalized.rpartition("@")[2]
            self.failed_domains[domain, result.reason] += 1
        elif result.reason == CleanReason.UNREADABLE_ROW:
            self.unreadable.append((result.line, result.detail))
