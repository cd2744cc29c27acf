"""Is a sending domain set up so that its mail is not refused? `check_domain` answers
with a report, one line per finding, each pass / warn / fail with the fix in words.

    from bounced.domaincheck import Request, check_domain

    report = check_domain(Request("example.com", selectors=("s1",), ips=("192.0.2.1",)))
    for line in report.lines:
        print(line.outcome, line.check, line.message, line.fix)

The records are fetched at the edge (bounced.domaincheck.fetch, with the `[dns]`
resolver) and judged by pure functions (bounced.domaincheck.spf and .evaluate).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bounced.clean.dns import Resolver
from bounced.config import DnsSettings
from bounced.domaincheck.evaluate import Request, evaluate
from bounced.domaincheck.fetch import fetch
from bounced.domaincheck.records import Line, Outcome

__all__ = ["DomainReport", "Line", "Outcome", "Request", "check_domain"]


@dataclass(frozen=True, slots=True)
class DomainReport:
    domain: str
    lines: tuple[Line, ...]

    @property
    def failed(self) -> bool:
        return any(line.outcome is Outcome.FAIL for line in self.lines)

    def as_dict(self) -> dict[str, object]:
        counts = {o.value: sum(line.outcome is o for line in self.lines) for o in Outcome}
        return {
            "domain": self.domain,
            "ok": not self.failed,
            "counts": counts,
            "lines": [line.as_dict() for line in self.lines],
        }


def check_domain(request: Request, settings: DnsSettings | None = None) -> DomainReport:
    """Fetch the domain's records and judge them."""
    resolver = Resolver(settings or DnsSettings())
    records = asyncio.run(fetch(request, resolver))
    return DomainReport(request.domain, tuple(evaluate(request, records)))
