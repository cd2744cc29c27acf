#!/usr/bin/env python3
"""Accepted messages per second: `bounced serve` against a bare aiosmtpd server, in one run.

N client threads (smtplib, one connection each, reused) send the corpus messages
to each server in turn, on loopback: first to a bare aiosmtpd server whose
handler answers 250 and keeps nothing, then to `bounced serve` (SQLite store,
fsynced spool, the ingesting worker running in the same process). Both servers
run as processes of their own. A message counts when it got 250. The run is
bounded by --messages per server and --seconds per server. Afterwards the time
until bounced's worker has ingested the whole spool is reported too.

    .venv/bin/python benches/listener.py [--clients 8] [--messages 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
DEFAULT_CORPUS = BENCHES.parent.parent / "shared" / "corpus" / "sisimai" / "eml"
DOMAIN = "bounces.example.com"
TARGET_RATIO = 0.7

BARE = """
import signal, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

class Nothing:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

class LongLines(SMTP):
    line_length_limit = 65536  # the same limit as bounced's listener

class Bare(Controller):
    def factory(self):
        return LongLines(self.handler, hostname="bench", data_size_limit=41943040,
                         enable_SMTPUTF8=True, loop=self.loop)

controller = Bare(Nothing(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("listening", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(1):
    pass
controller.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def load(corpus: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(corpus.glob("*.eml"))]


def drive(port: int, messages: list[bytes], clients: int, total: int, seconds: float) -> dict:
    """Send up to `total` messages from `clients` threads; count the 250s."""
    counter = iter(range(total))
    lock = threading.Lock()
    accepted = refused = 0
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal accepted, refused
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    smtp.sendmail("<>", [f"bounces@{DOMAIN}"], messages[i % len(messages)])
                    ok = True
                except smtplib.SMTPServerDisconnected:
                    smtp.connect("127.0.0.1", port)
                    ok = False
                except smtplib.SMTPException:
                    smtp.rset()
                    ok = False
                with lock:
                    accepted += ok
                    refused += not ok

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "accepted": accepted,
        "refused": refused,
        "seconds": round(elapsed, 3),
        "per_second": round(accepted / elapsed, 1) if elapsed else 0.0,
    }


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    return proc.wait(120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory of .eml files")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--messages", type=int, default=2000, help="messages per server")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit per server")
    ap.add_argument("--json", action="store_true", help="figures as one JSON object")
    args = ap.parse_args(argv)
    messages = load(args.corpus)
    if not messages:
        raise SystemExit(f"no .eml files in {args.corpus}")
    results: dict = {"clients": args.clients, "corpus_messages": len(messages)}

    port = free_port()
    with subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdout=subprocess.PIPE) as bare:
        wait_for_port(port, bare)
        results["bare"] = drive(port, messages, args.clients, args.messages, args.seconds)
        stop(bare)

    with tempfile.TemporaryDirectory(prefix="bounced-bench-") as tmp:
        port = free_port()
        spool = Path(tmp) / "spool"
        argv_serve = [sys.executable, "-m", "bounced", "--database-url"]
        argv_serve += [f"sqlite:///{tmp}/bench.db", "serve", "--port", str(port)]
        argv_serve += ["--domain", DOMAIN, "--spool-dir", str(spool)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
        with open(Path(tmp) / "serve.log", "wb") as log:
            serve = subprocess.Popen(argv_serve, stderr=log, env=env, cwd=tmp)
        wait_for_port(port, serve)
        sent_at = time.perf_counter()
        results["bounced"] = drive(port, messages, args.clients, args.messages, args.seconds)
        # How long the worker takes to ingest everything that was acknowledged.
        while any(os.listdir(spool / d) for d in ("new", "cur")):
            time.sleep(0.05)
        drained = time.perf_counter() - sent_at
        results["bounced"]["ingested_per_second"] = round(
            results["bounced"]["accepted"] / drained, 1
        )
        results["bounced"]["exit_status"] = stop(serve)

    bare_rate = results["bare"]["per_second"]
    ratio = results["bounced"]["per_second"] / bare_rate if bare_rate else 0.0
    results["ratio"] = round(ratio, 3)
    results["target"] = TARGET_RATIO
    if args.json:
        print(json.dumps(results))
    else:
        b, s = results["bare"], results["bounced"]
        print(f"clients {args.clients}, {len(messages)} corpus messages, loopback")
        print(
            f"bare aiosmtpd   {b['accepted']:6d} accepted in {b['seconds']:7.2f}s  "
            f"{b['per_second']:8.1f}/s  refused {b['refused']}"
        )
        print(
            f"bounced serve   {s['accepted']:6d} accepted in {s['seconds']:7.2f}s  "
            f"{s['per_second']:8.1f}/s  refused {s['refused']}  "
            f"(all ingested at {s['ingested_per_second']:.1f}/s)"
        )
        print(f"ratio {ratio:.3f} (target >= {TARGET_RATIO})")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
