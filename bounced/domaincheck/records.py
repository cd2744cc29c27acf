"""The DNS records a domain check judges: fetched once at the edge
(bounced.domaincheck.fetch), then read by pure functions.

`Records` maps (name, type) to the Answer of that query; a query that was never
asked (beyond a limit, or not needed) is simply absent, and the checks say so
rather than guess.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bounced.clean.dns import Answer

__all__ = ["Line", "Outcome", "Records", "reverse_name", "unchecked"]

Records = Mapping[tuple[str, str], Answer]


class Outcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Line:
    """One finding of the report: what was checked, how it went, and what to do."""

    check: str  # spf, dkim, dmarc, mx, return_path, fcrdns, cname
    outcome: Outcome
    subject: str  # the name or IP it is about
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "outcome": self.outcome.value,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }


def reverse_name(ip: str) -> str:
    """The PTR name of an address: 192.0.2.1 -> 1.2.0.192.in-addr.arpa."""
    return ipaddress.ip_address(ip).reverse_pointer


def unchecked(check: str, subject: str, error: str) -> Line:
    """The line for what DNS did not answer: a warning, never a pass or a fail."""
    return Line(
        check,
        Outcome.WARN,
        subject,
        f"could not be checked (DNS {error})",
        "run the check again; if it persists, the domain's name servers have a problem",
    )
