"""Prometheus metrics of every bounced process (API, policy service, listener, worker).

Counters and histograms are defined once here and counted where things happen.
With several processes (`bounced api --workers N`), `PROMETHEUS_MULTIPROC_DIR` is set
before this module is first imported, prometheus_client keeps the values in files
there, and `bounced.health.exposition` adds them up with the gauges it reads at
scrape time (spool backlog, retries due), so every process reports the same truth.
This module imports nothing of bounced at run time: every part may count. No
label ever holds an address: only kinds, reasons, verdicts, routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

if TYPE_CHECKING:
    from bounced.suppressions import Ingested

__all__ = [
    "BLOCKS",
    "BOUNCES",
    "CHECKS",
    "POLICY_REQUESTS",
    "REGISTRY",
    "REQUEST_DURATION",
    "WEBHOOKS",
    "count_ingested",
]

#: This process's own metrics (in multiprocess mode, their values live in files).
REGISTRY = CollectorRegistry(auto_describe=True)

BOUNCES = Counter(
    "bounced_bounces",
    "Bounce rows recorded, by kind, reason and class.",
    ("kind", "reason", "class"),
    registry=REGISTRY,
)
BLOCKS = Counter(
    "bounced_blocks",
    "Addresses blocked, by why (a reason, or manual).",
    ("why",),
    registry=REGISTRY,
)
CHECKS = Counter(
    "bounced_checks", "Addresses checked, by verdict.", ("verdict",), registry=REGISTRY
)
POLICY_REQUESTS = Counter(
    "bounced_policy_requests",
    "Postfix policy requests answered, by action.",
    ("action",),
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "bounced_webhook_requests",
    "Sending providers' webhook requests, by provider and outcome (recorded, kept, "
    "refused: verification failed).",
    ("provider", "outcome"),
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "bounced_http_request_duration_seconds",
    "HTTP request duration, by route template and method.",
    ("route", "method"),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def count_ingested(results: Iterable[Ingested]) -> None:
    """Count the new rows and blocks of ingested messages."""
    for result in results:
        bounces = {b.recipient: b for b in result.report.bounces}
        for row in result.rows:
            if row.address is None or row.duplicate:
                continue
            bounce = bounces.get(row.recipient)
            reason = (bounce.reason if bounce else None) or "unknown"
            if bounce is not None:
                BOUNCES.labels(bounce.kind, reason, bounce.bounce_class or "unknown").inc()
            if row.blocked:
                BLOCKS.labels(reason).inc()
