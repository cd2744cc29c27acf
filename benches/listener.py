#!/usr/bin/env python3
"""Accepted messages per second: `bounced serve` against a bare aiosmtpd server, in one run.

Both servers run as processes of their own on loopback, side by side: a bare
aiosmtpd server whose handler answers 250 and keeps nothing, and `bounced serve`
as deployed by default (SQLite store, fsynced spool, the ingesting worker as a
thread of the same process: it runs during the load, pausing between messages
while sessions are open, and catches up afterwards). N client processes (smtplib,
one connection each, reused: an MTA delivering over N parallel connections;
processes, so the load generator is not one GIL) send the corpus messages. A
message counts when it got 250.

The load goes to each server in turn, in --rounds rounds (bounced first in every
other round), so both see the same machine conditions; before each run bounced's
worker has ingested everything spooled, so neither run shares the machine with
it. The figures are the medians over the rounds, the ratio the median of the
rounds' ratios. Bounded by --messages per server and round and --seconds per
server and round. Also printed: how fast bounced ingested (from the start of its
load to an empty spool).

    .venv/bin/python benches/listener.py [--clients 20] [--messages 2000] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
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
    """The corpus messages with CRLF line ends, as an MTA sends them (smtplib sends bytes
    as they are, and a file with LF ends then reaches the server as one long line)."""
    return [re.sub(rb"\r?\n", b"\r\n", p.read_bytes()) for p in sorted(corpus.glob("*.eml"))]


def client(port: int, messages: list[bytes], count: int, start, deadline: float, out) -> None:
    """One connection, `count` messages (fewer when the deadline passes): (accepted, refused)."""
    accepted = refused = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        start.wait()
        for i in range(count):
            if time.time() > deadline:
                break
            try:
                smtp.sendmail("<>", [f"bounces@{DOMAIN}"], messages[i % len(messages)])
                accepted += 1
            except smtplib.SMTPServerDisconnected:
                smtp.connect("127.0.0.1", port)
                refused += 1
            except smtplib.SMTPException:
                smtp.rset()
                refused += 1
    out.put((accepted, refused))


def drive(port: int, messages: list[bytes], clients: int, total: int, seconds: float) -> dict:
    """Send `total` messages from `clients` processes (each its share of the corpus,
    connected before the clock starts); count the 250s."""
    start, out = mp.Event(), mp.Queue()
    deadline = time.time() + seconds
    procs = [
        mp.Process(
            target=client,
            args=(port, messages[k::clients], total // clients, start, deadline, out),
        )
        for k in range(clients)
    ]
    for proc in procs:
        proc.start()
    began = time.perf_counter()
    start.set()
    counts = [out.get() for _ in procs]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    accepted = sum(a for a, _ in counts)
    return {
        "accepted": accepted,
        "refused": sum(r for _, r in counts),
        "seconds": round(elapsed, 3),
        "per_second": round(accepted / elapsed, 1),
    }


def wait_drained(spool: Path) -> float:
    """Seconds until bounced's worker has ingested everything spooled."""
    began = time.perf_counter()
    while any(os.listdir(spool / d) for d in ("new", "cur")):
        time.sleep(0.05)
    return round(time.perf_counter() - began, 2)


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    return proc.wait(120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory of .eml files")
    ap.add_argument(
        "--clients", type=int, default=20, help="client processes (Postfix's default per domain)"
    )
    ap.add_argument("--messages", type=int, default=2000, help="per server and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit per server and round")
    ap.add_argument("--json", action="store_true", help="figures as one JSON object")
    args = ap.parse_args(argv)
    messages = load(args.corpus)
    if not messages:
        raise SystemExit(f"no .eml files in {args.corpus}")
    runs: dict[str, list[dict]] = {"bare": [], "bounced": []}

    with tempfile.TemporaryDirectory(prefix="bounced-bench-") as tmp:
        ports = {"bare": free_port(), "bounced": free_port()}
        spool = Path(tmp) / "spool"
        argv_serve = [sys.executable, "-m", "bounced", "--database-url"]
        argv_serve += [f"sqlite:///{tmp}/bench.db", "serve", "--port", str(ports["bounced"])]
        argv_serve += ["--domain", DOMAIN, "--spool-dir", str(spool)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
        bare_argv = [sys.executable, "-c", BARE, str(ports["bare"])]
        with (
            open(Path(tmp) / "serve.log", "wb") as log,
            subprocess.Popen(bare_argv, stdout=subprocess.DEVNULL) as bare,
            subprocess.Popen(argv_serve, stderr=log, env=env, cwd=tmp) as serve,
        ):
            servers = {"bare": bare, "bounced": serve}
            for name, proc in servers.items():
                wait_for_port(ports[name], proc)
            for r in range(args.rounds):
                for name in ("bare", "bounced") if r % 2 == 0 else ("bounced", "bare"):
                    run = drive(ports[name], messages, args.clients, args.messages, args.seconds)
                    # Nothing measured while bounced's worker catches up: it would slow
                    # the next run (the bare server's, every other time) down.
                    run["drained_after"] = wait_drained(spool)
                    runs[name].append(run)
            stop(bare)
            status = stop(serve)

    ratios = [b["per_second"] / a["per_second"] for a, b in zip(*runs.values(), strict=True)]
    ratio = statistics.median(ratios)
    results = {
        "clients": args.clients,
        "corpus_messages": len(messages),
        "rounds": args.rounds,
        "worker": "thread (in the listener process, the default)",
        **{
            name: {
                "per_second": statistics.median(r["per_second"] for r in rs),
                "accepted": sum(r["accepted"] for r in rs),
                "refused": sum(r["refused"] for r in rs),
                "rounds_per_second": [r["per_second"] for r in rs],
            }
            for name, rs in runs.items()
        },
        "ratio": round(ratio, 3),
        "round_ratios": [round(x, 3) for x in ratios],
        "target": TARGET_RATIO,
        "ingested_per_second": statistics.median(
            r["accepted"] / (r["seconds"] + r["drained_after"]) for r in runs["bounced"]
        ),
        "exit_status": status,
    }
    if args.json:
        print(json.dumps(results))
    else:
        print(
            f"{args.clients} client processes, {len(messages)} corpus messages, loopback, "
            f"{args.rounds} rounds; bounced's worker: {results['worker']}"
        )
        for name in runs:
            res = results[name]
            rounds = " ".join(f"{x:.0f}" for x in res["rounds_per_second"])
            print(
                f"{name:8s} {res['per_second']:8.1f}/s median (rounds: {rounds})  "
                f"accepted {res['accepted']}  refused {res['refused']}"
            )
        print(
            f"ratio {ratio:.3f} median (rounds: {' '.join(f'{x:.3f}' for x in ratios)}), "
            f"target >= {TARGET_RATIO}"
        )
        print(
            f"bounced ingested its rounds at {results['ingested_per_second']:.1f}/s "
            f"(load to empty spool, median); exit status {status}"
        )
    return 0 if ratio >= TARGET_RATIO and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
