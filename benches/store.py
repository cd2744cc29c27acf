#!/usr/bin/env python3
"""Suppression store figures, in one run: the bulk check and ingest throughput.

1. Check: a SQLite store with 1M addresses (500k blocked); a file of 1M addresses,
   half of them in the store. Timed as whole processes, in turns, best of
   --repeat: `bounced check --file F --format csv` against a plain sqlite3 script
   doing the same job (read the file, look up 1000 addresses per IN query, write
   one CSV verdict per address). Both outputs must be identical. Printed: checks/s,
   and raw/bounced (target >= 0.5) and bounced's wall time (target < 10 s).
2. Ingest: the corpus messages copied --copies times (identical copies are
   duplicates: they exercise the refusal path, as a re-run would) ingested into a
   fresh SQLite store and a fresh PostgreSQL schema, by 1 process, by 1 process with
   a parser process beside it (`ingest -j 2`), and by 4 processes each taking a
   quarter of the files. Printed: messages/s, of whole
   processes and of processes that have started already (timed from the moment all
   have imported what the command needs, as long-running workers have: see WARM).
   The same shares are also parsed without a store (`bounced parse` to ndjson, by 1
   and by 4 processes, whole and started): the most that four ingest processes can
   gain on this machine, since each ingest process parses its share itself.
3. Ingest of a generated set (--generated N, default 100,000; 0 skips it): N RFC 3464
   notices, one original message each, to addresses of which 30 % bounce more than
   once (2 to 5 times, their notices spread over the whole set), written as four
   mbox files; ingested like the corpus, by 1 and by 4 processes.

PostgreSQL comes from --postgres, else BOUNCED_TEST_DATABASE_URL; without it that
part is reported missing. The 1M store is filled with plain INSERTs (setup, not
measured) after `bounced` created its schema.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
DEFAULT_CORPUS = BENCHES.parent.parent / "shared" / "corpus" / "sisimai" / "eml"
BOUNCED = [sys.executable, "-m", "bounced"]

RAW_CHECK = r"""
import csv, sqlite3, sys
db, path = sys.argv[1:3]
con = sqlite3.connect(db)
out = csv.writer(sys.stdout)
out.writerow(("address", "verdict", "state", "reason"))
def flush(chunk):
    marks = ",".join("?" * len(chunk))
    sql = f"SELECT address, state, blocked_reason FROM address WHERE address IN ({marks})"
    found = {a: (s, r) for a, s, r in con.execute(sql, chunk)}
    for a in chunk:
        s, r = found.get(a, ("", None))
        out.writerow((a, "send" if s in ("", "active") else "blocked", s, r or ""))
chunk = []
with open(path) as f:
    for line in f:
        chunk.append(line.strip())
        if len(chunk) == 1000:
            flush(chunk)
            chunk = []
if chunk:
    flush(chunk)
"""


def environment() -> dict[str, str]:
    """The same environment for every process timed: no BOUNCED_* settings, and
    buffered output (PYTHONUNBUFFERED would make each row a system call)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env.pop("PYTHONUNBUFFERED", None)
    return env


def timed(cmd: list[str], out: Path | None = None, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        done = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, env=environment(), cwd=cwd)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # check exits 1 when an address is blocked
        raise SystemExit(f"{cmd[:5]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return wall


def fill(db: Path, n: int) -> None:
    """n addresses, every other one blocked (hard), straight into the created schema."""
    subprocess.run([*BOUNCED, "--database-url", f"sqlite:///{db}", "db", "upgrade"],
                   check=True, env=environment(), capture_output=True)  # fmt: skip
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = (
        (f"user{i}@domain{i % 997}.example", f"domain{i % 997}.example")
        + (("blocked", "hard", "hard", 1) if i % 2 == 0 else ("active", None, None, 0))
        + (now, now)
        for i in range(n)
    )
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO address (address, domain, state, blocked_reason, auto_reason, returns,"
        " manual, former_employee, last_reason, last_status, last_class, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, '', '', '', ?, ?)",
        rows,
    )
    con.commit()
    con.close()


def bench_check(work: Path, n: int, repeat: int) -> dict[str, float]:
    db = work / "million.db"
    print(f"check: filling a store with {n:,} addresses ({n // 2:,} blocked) ...", flush=True)
    fill(db, n)
    queries = work / "addresses.txt"
    rng = random.Random(1)
    present = rng.sample(range(n), n // 2)
    lines = [f"user{i}@domain{i % 997}.example" for i in present]
    lines += [f"someone{i}@elsewhere{i % 991}.example" for i in range(n - len(lines))]
    rng.shuffle(lines)
    queries.write_text("\n".join(lines) + "\n")
    raw_script = work / "raw_check.py"
    raw_script.write_text(RAW_CHECK)
    ours = [*BOUNCED, "--database-url", f"sqlite:///{db}", "check", "--file", str(queries)]
    best = {"bounced": float("inf"), "raw": float("inf")}
    for _ in range(repeat):
        best["raw"] = min(
            best["raw"],
            timed([sys.executable, str(raw_script), str(db), str(queries)], work / "raw.csv"),
        )
        best["bounced"] = min(best["bounced"], timed([*ours, "--format", "csv"], work / "ours.csv"))
    if (work / "raw.csv").read_bytes() != (work / "ours.csv").read_bytes():
        raise SystemExit("check: bounced and the raw script disagree")
    return best


def pg_schema(base: str) -> tuple[str, object]:
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return url.render_as_string(hide_password=False), drop


def bench_ingest(work: Path, corpus: Path, copies: int, postgres: str | None) -> dict:
    messages = sorted(corpus.glob("*.eml"))
    shares = [work / f"share{k}" for k in range(4)]
    for folder in shares:
        folder.mkdir()
    count = 0
    for copy in range(copies):
        for path in messages:
            shutil.copyfile(path, shares[count % 4] / f"{copy:02}-{path.name}")
            count += 1
    print(f"ingest: {count:,} messages ({len(messages)} x {copies})", flush=True)
    return ingest_everywhere(work, shares, count, postgres, "ingest")


#: messages/s, cores used, load average.
Rate = tuple[float, float, float]
#: The ways one set is ingested: (processes, their --jobs), printed as columns.
WAYS = ((1, 1), (1, 2), (4, 1))


def ingest_everywhere(
    work: Path, shares: list[Path], count: int, postgres: str | None, label: str
) -> dict:
    """messages/s into a fresh SQLite store and a fresh PostgreSQL schema, each of
    the WAYS, and of the same shares parsed without a store (PARSE_ONLY; by 1 and 4
    processes: a parse with -j 2 is benches/throughput.py's)."""
    targets = {"sqlite": None, "postgresql": postgres, PARSE_ONLY: None}
    results: dict[str, dict[tuple[int, int], Rate | None]] = {}
    for (name, base), warm in itertools.product(targets.items(), (False, True)):
        key = f"{name}, started" if warm else name
        results[key] = {
            (processes, jobs): None
            if (name == "postgresql" and not base) or (name == PARSE_ONLY and jobs > 1)
            else rate(
                work,
                shares,
                count,
                base,
                f"{label}-{processes}-{jobs}-{warm}",
                (processes, jobs),
                warm,
                store=name != PARSE_ONLY,
            )
            for processes, jobs in WAYS
        }
    return results


#: The row of processes that parse their share without storing it (`bounced parse`).
PARSE_ONLY = "parse, no store"


def rate(
    work: Path,
    shares: list[Path],
    count: int,
    postgres: str | None,
    label: str,
    way: tuple[int, int],
    warm: bool,
    store: bool = True,
) -> Rate:
    """One ingest into a fresh SQLite file (no `postgres`) or PostgreSQL schema; with
    `store` False, a parse of the same shares instead (no database)."""
    drop = None
    if postgres:
        url, drop = pg_schema(postgres)
    else:
        url = f"sqlite:///{work / f'{label}.db'}"
    try:
        wall, cpu = ingest(url, shares, way, work, warm, store)
        return (count / wall, cpu / wall, os.getloadavg()[0])
    finally:
        if drop:
            drop()


GENERATED = """\
From MAILER-DAEMON Mon Jan  1 10:00:00 2024
From: Mail Delivery System <MAILER-DAEMON@mx{mx}.example.net>
To: bounces@sender.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{n}@mx{mx}.example.net>
Date: Mon, 1 Jan 2024 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"

--B{n}
Content-Type: text/plain

Your message could not be delivered.

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx{mx}.example.net

Final-Recipient: rfc822; {address}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--B{n}
Content-Type: text/rfc822-headers

From: news@sender.example.com
To: {address}
Message-ID: <campaign-{n}@sender.example.com>

--B{n}--

"""
DIAGNOSTICS = (
    ("5.1.1", "550 5.1.1 User unknown"),
    ("4.2.2", "452 4.2.2 Mailbox full"),
    ("5.2.2", "552 5.2.2 Mailbox over quota"),
    ("4.4.1", "451 4.4.1 Host not reachable"),
)


def generate(work: Path, n: int) -> list[Path]:
    """n notices in four mbox files: 70 % of the addresses bounce once, 30 % two to
    five times (one notice per original message, so every one is a new return)."""
    rng = random.Random(16)
    addresses: list[str] = []
    i = 0
    while len(addresses) < n:
        address = f"user{i}@domain{i % 4999}.example"
        addresses += [address] * (rng.randint(2, 5) if rng.random() < 0.3 else 1)
        i += 1
    addresses = addresses[:n]
    rng.shuffle(addresses)
    shares = [work / f"generated{k}.mbox" for k in range(4)]
    files = [path.open("w") for path in shares]
    for k, address in enumerate(addresses):
        status, diagnostic = DIAGNOSTICS[k % len(DIAGNOSTICS)]
        files[k % 4].write(
            GENERATED.format(n=k, mx=k % 7, address=address, status=status, diagnostic=diagnostic)
        )
    for file in files:
        file.close()
    return shares


def bench_generated(work: Path, n: int, postgres: str | None) -> dict:
    folder = work / "generated"
    folder.mkdir()
    shares = generate(folder, n)
    print(f"ingest: {n:,} generated messages", flush=True)
    return ingest_everywhere(work, shares, n, postgres, "generated")


#: `bounced ingest` (or `parse`) in a process that has started already, as a
#: long-running worker has: it first runs the command on an empty folder (every module
#: the command needs is then imported, the rules loaded), says "ready" on standard
#: error with its CPU seconds so far, waits for a line on its standard input, then
#: runs the command on its paths.
WARM = r"""
import os, sys
from bounced.cli import main
def run(args):
    sys.argv = ["bounced", *args]
    try:
        main()
    except SystemExit as exit:
        if exit.code:
            raise
url, empty, verb, *paths = sys.argv[1:]
command = ["--database-url", url, *verb.split()]
run([*command, empty])
print("ready", sum(os.times()[:2]), file=sys.stderr, flush=True)
sys.stdin.readline()
run([*command, *paths])
"""


def ingest(
    url: str,
    shares: list[Path],
    way: tuple[int, int],
    work: Path,
    warm: bool = False,
    store: bool = True,
) -> tuple[float, float]:
    """Wall seconds and the CPU seconds of the processes (and their workers), run
    one `way` (processes, --jobs): whole, or (`warm`) from the moment every process
    has started (see WARM). Without `store`, the processes parse their shares
    (`bounced parse`, rows to /dev/null) instead."""
    processes, jobs = way
    verb = ["ingest", "-j", str(jobs)] if store else ["parse", "--format", "ndjson"]
    if store:
        subprocess.run([*BOUNCED, "--database-url", url, "db", "upgrade"],
                       check=True, env=environment(), capture_output=True)  # fmt: skip
    groups = [[str(s) for s in shares]] if processes == 1 else [[str(s)] for s in shares]
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WARM, url, str(empty), " ".join(verb), *paths]
            if warm
            else [*BOUNCED, "--database-url", url, *verb, *paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment(),
            cwd=work,
        )
        for paths in groups
    ]
    started = 0.0
    if warm:
        for proc in procs:
            started += _ready(proc)
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{verb[0]} failed: {err.decode()[-500:]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return wall, cpu - started


def _ready(proc: subprocess.Popen[bytes]) -> float:
    """The CPU seconds a WARM process took to start, read from its "ready" line."""
    assert proc.stderr is not None
    said = []
    for line in proc.stderr:
        if line.startswith(b"ready "):
            return float(line.split()[1])
        said.append(line)
    raise SystemExit(f"failed to start: {b''.join(said)[-500:]!r}")


def report_check(best: dict[str, float], args: argparse.Namespace) -> None:
    n = args.addresses
    ours, raw = best["bounced"], best["raw"]
    verdict = "under 10 s" if ours < 10 else "NOT under 10 s"
    print(f"check {n:,} addresses (half in a store of {n:,}), SQLite, best of {args.repeat}:")
    print(f"  bounced check --file  {ours:6.2f} s  {n / ours:>10,.0f} /s  ({verdict})")
    print(f"  raw sqlite3 script    {raw:6.2f} s  {n / raw:>10,.0f} /s")
    print(f"  speed bounced/raw: {raw / ours:.2f} (target >= 0.5)")


def report_ingest(results: dict[str, dict[tuple[int, int], Rate | None]], what: str) -> None:
    """messages/s, with the cores the ingest processes used (their CPU over the wall
    time: PostgreSQL's own not included) and the load average at the end of the run
    (the machine is shared: a load above the core count means the runs shared it)."""
    print(f"ingest {what}, messages/s (cores used by the ingest processes, load);")
    print("  whole processes, and from the moment all have started (imports done):")
    for name, rates in results.items():
        cells = [
            f"{_way_name(way)} "
            + (
                ("missing (no --postgres)" if name.startswith("postgresql") else "-")
                if rate is None
                else f"{rate[0]:7,.0f} ({rate[1]:.2f} cores, load {rate[2]:.1f})"
            )
            for way, rate in rates.items()
        ]
        line = f"  {name:<26}  " + "   ".join(cells)
        one = rates[WAYS[0]]
        if one is not None:
            ratios = [
                f"{_way_name(way)} / 1: {rate[0] / one[0]:.2f}"
                for way, rate in rates.items()
                if rate is not None and way != WAYS[0]
            ]
            line += f"   ({', '.join(ratios)})"
        print(line)


def _way_name(way: tuple[int, int]) -> str:
    processes, jobs = way
    return f"{processes} process{'es' if processes > 1 else ''}" + (
        f" -j {jobs}" if jobs > 1 else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="check: best of N turns")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--generated", type=int, default=100_000, help="0: skip that set")
    parser.add_argument("--postgres", default=os.environ.get("BOUNCED_TEST_DATABASE_URL"))
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bounced-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_check:
            report_check(bench_check(work, args.addresses, args.repeat), args)
        if not args.skip_ingest:
            corpus = bench_ingest(work, args.corpus, args.copies, args.postgres)
            report_ingest(corpus, f"corpus x {args.copies}")
        if not args.skip_ingest and args.generated:
            generated = bench_generated(work, args.generated, args.postgres)
            report_ingest(generated, f"{args.generated:,} generated")


if __name__ == "__main__":
    main()
