#!/usr/bin/env python3
"""Retry dispatch rate: due retries handed to a webhook on loopback by 1 and 2 workers.

Setup (not measured): --plans sent messages that bounced softly, so each has a plan,
with a clock two hours back so that every plan is due now. Then 1 worker (SQLite and
PostgreSQL) and 2 workers (PostgreSQL: several workers need it), each in its own
process, started together behind a barrier, hand every plan over:
- pull: `retries due --claim` batches (claim + record, the scheduler's own cost),
- webhook: one `Worker.run_once()` POSTing to a receiver in this process
  (ThreadingHTTPServer with keep-alive; it only counts, and one Python process
  serving every worker bounds this figure).
Printed: retries handed over per second (wall time from the barrier to the last
worker's end), and whether every plan was handed over exactly once.

PostgreSQL comes from --postgres, else BOUNCED_TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dsn_builder import make_dsn, soft

from bounced.config import Settings, WebhookSettings
from bounced.sending.dispatch import WebhookDispatcher
from bounced.sending.log import SendingLog
from bounced.sending.worker import Worker
from bounced.suppressions import Suppressions


class Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.seen.append(body)  # type: ignore[attr-defined]
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        """Quiet."""


def settings_for(url: str, batch: int) -> Settings:
    base = Settings(database_url=url)
    return replace(base, retry=replace(base.retry, batch=batch))


def fill(url: str, count: int) -> None:
    now = datetime.now(UTC) - timedelta(hours=2)
    with Suppressions.open(settings_for(url, 100), clock=lambda: now) as sup:
        log = SendingLog(sup)
        for i in range(count):
            log.record(f"full{i}@example.org", f"<m{i}@bench>")
        dsns = (
            (f"d{i}", make_dsn(soft(f"full{i}@example.org"), original_id=f"<m{i}@bench>"))
            for i in range(count)
        )
        for _ in sup.ingest_many(dsns):
            pass
        log.sync()


def work(url: str, hook: str, batch: int, barrier, results) -> None:
    """One worker: a webhook pass, or (hook empty) `pull` batches until none are due."""
    with Suppressions.open(settings_for(url, batch)) as sup:
        log = SendingLog(sup)
        dispatcher = WebhookDispatcher(WebhookSettings(hook, "k")) if hook else None
        barrier.wait()
        if dispatcher is not None:
            dispatched = Worker(log, dispatcher).run_once().dispatched
            dispatcher.close()
        else:
            dispatched = 0
            while got := log.pull(f"pull-{os.getpid()}", batch):
                dispatched += len(got)
        results.put((dispatched, time.perf_counter()))


def run(url: str, workers: int, plans: int, batch: int, channel: str) -> tuple[float, bool]:
    fill(url, plans)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    server.seen, server.lock = [], threading.Lock()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/" if channel == "webhook" else ""
    barrier = multiprocessing.Barrier(workers + 1)
    results = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=work, args=(url, hook, batch, barrier, results))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    ends = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    server.shutdown()
    server.server_close()
    dispatched = sum(n for n, _ in ends)
    elapsed = max(t for _, t in ends) - start
    import json

    if channel == "webhook":
        ids = Counter(json.loads(b)["plan_id"] for b in server.seen)  # type: ignore[attr-defined]
    else:
        ids = Counter(due_ids(url))
    exact = dispatched == plans and len(ids) == plans and max(ids.values()) == 1
    return dispatched / elapsed, exact


def due_ids(url: str) -> list[int]:
    """Plan ids of every successful hand-over in the dispatch log."""
    from sqlalchemy import select

    from bounced.db.tables import RetryDispatch

    table = RetryDispatch.__table__  # type: ignore[attr-defined]
    with Suppressions.open(settings_for(url, 100)) as sup, sup.store.engine.connect() as conn:
        return list(conn.scalars(select(table.c.plan_id).where(table.c.outcome == "sent")))


def postgres_schema(base: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("BOUNCED_TEST_DATABASE_URL"))
    args = parser.parse_args()
    for channel in ("pull", "webhook"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'b.db'}"
            rate, exact = run(url, 1, args.plans, args.batch, channel)
            print(f"{channel:8} sqlite     1 worker : {rate:7.0f} retries/s  exactly once: {exact}")
        if not args.postgres:
            print("postgresql: missing (--postgres or BOUNCED_TEST_DATABASE_URL)")
            continue
        for workers in (1, 2):
            url, schema = postgres_schema(args.postgres)
            try:
                rate, exact = run(url, workers, args.plans, args.batch, channel)
            finally:
                drop_schema(args.postgres, schema)
            label = f"{workers} worker{'s' if workers > 1 else ' '}"
            print(f"{channel:8} postgresql {label}: {rate:7.0f} retries/s  exactly once: {exact}")


if __name__ == "__main__":
    main()
