"""Prometheus metrics of every bounced process (API, policy service, listener, worker).

Counters and histograms are defined once here and counted where things happen.
With several processes (`bounced api --workers N`), `PROMETHEUS_MULTIPROC_DIR` is set
before this module is first imported, prometheus_client keeps the values in files
there, and `exposition` adds them up. The gauges (spool backlog, retries due) are
read from the spool and the store at scrape time, so every process reports the same
truth. No label ever holds an address: only kinds, reasons, verdicts, routes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from bounced.db.store import Store
    from bounced.suppressions import Ingested

__all__ = [
    "BLOCKS",
    "BOUNCES",
    "CHECKS",
    "CONTENT_TYPE_LATEST",
    "POLICY_REQUESTS",
    "REGISTRY",
    "REQUEST_DURATION",
    "WEBHOOKS",
    "count_ingested",
    "exposition",
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


class _StateCollector:
    """Gauges read at scrape time: the spool's backlog and the retries due now."""

    def __init__(self, store: Store | None, spool_dir: str) -> None:
        self.store = store
        self.spool_dir = spool_dir

    def collect(self) -> Iterator[Metric]:
        from bounced.errors import BouncedError

        if self.spool_dir and Path(self.spool_dir, "new").is_dir():
            from bounced.listener.spool import Spool

            spool = GaugeMetricFamily("bounced_spool_messages", "Messages spooled, not ingested.")
            spool.add_metric((), Spool(self.spool_dir).waiting())
            yield spool
        if self.store is not None:
            from bounced.sending.log import SendingLog
            from bounced.suppressions import Suppressions

            try:
                due = SendingLog(Suppressions(self.store, self.store.settings, "metrics")).due()
            except BouncedError:
                return  # the database is down: /readyz says so; the gauge is left out
            retries = GaugeMetricFamily("bounced_retries_due", "Retries due and not claimed.")
            retries.add_metric((), due)
            yield retries


class _Own:
    """This process's registry, for a single-process exposition."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def exposition(store: Store | None = None, spool_dir: str = "") -> bytes:
    """The text format of every metric: all processes' counters, the gauges of now."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_Own())  # type: ignore[arg-type]
    registry.register(_StateCollector(store, spool_dir))  # type: ignore[arg-type]
    return generate_latest(registry)
