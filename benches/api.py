#!/usr/bin/env python3
"""HTTP API and policy-service figures, in one run, against a 1M-address store.

1. Single-address checks (`GET /v1/suppressions/{address}` with a token) by
   `bounced api`, beside a bare FastAPI endpoint returning a constant
   (benches/bare_api.py) under the same uvicorn settings, with 1 and 2 workers
   (2 workers: PostgreSQL). A client of --connections keep-alive connections asks
   for --seconds; printed: requests/s, p50 and p99 latency, and bounced/bare
   (goal >= 0.5, p99 < 10 ms).
2. The bulk check: 100 000 addresses in one `POST /v1/check` (half of them in the
   store), wall time of the whole answer (goal < 3 s).
3. `bounced policy-server`: RCPT requests over --connections persistent
   connections for --seconds; requests/s (goal >= 5000/s).

The store: SQLite (1 worker, the policy service) and, when --postgres or
BOUNCED_TEST_DATABASE_URL gives one, a PostgreSQL schema (1 and 2 workers), each
filled with 1M addresses (every other one blocked) by plain INSERTs or COPY (setup,
not measured). Client and servers share this machine: the ratios are what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from store import environment, fill

BENCHES = Path(__file__).resolve().parent
BOUNCED = [sys.executable, "-m", "bounced"]
N = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


@contextmanager
def server(argv: list[str], port: int, cwd: Path):
    proc = subprocess.Popen(
        argv, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, proc)
        time.sleep(1)  # every worker up
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def bounced_api(url: str, port: int, workers: int, cwd: Path):
    argv = [*BOUNCED, "--database-url", url, "api", "--port", str(port)]
    return server([*argv, "--workers", str(workers)], port, cwd)


#: The reference under `bounced api`'s uvicorn settings (its protocol, no access log).
BARE = """
import sys, uvicorn
from bounced.http.serving import NoDelayH11
uvicorn.run("bare_api:app", host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
            http=NoDelayH11, log_level="warning", access_log=False)
"""


def bare_api(port: int, workers: int, cwd: Path):
    return server([sys.executable, "-c", BARE, str(port), str(workers)], port, BENCHES)


# --- a small keep-alive HTTP/1.1 client (the load generator costs as little as it can) ---


async def _http_client(port: int, paths: list[str], token: str, until: float, out: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    i = 0
    while (start := time.perf_counter()) < until:
        writer.write(f"GET {paths[i % len(paths)]} HTTP/1.1\r\n{head}".encode())
        i += 1
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif not line:
                raise SystemExit("the server closed the connection")
        body = await reader.readexactly(length)
        if not line or b'"error"' in body:
            raise SystemExit(f"error answer: {body[:200]!r}")
        out.append(time.perf_counter() - start)
    writer.close()


def load(port: int, token: str, connections: int, seconds: float) -> dict[str, float]:
    paths = [f"/v1/suppressions/user{i * 7919 % N}@domain{i * 7919 % N % 997}.example"
             for i in range(5000)]  # fmt: skip

    async def run() -> list[float]:
        out: list[float] = []
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _http_client(port, paths[k::connections], token, until, out)
                for k in range(connections)
            )
        )
        return out

    times = sorted(asyncio.run(run()))
    return {
        "rps": len(times) / seconds,
        "p50_ms": times[len(times) // 2] * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
    }


def bulk(port: int, token: str) -> float:
    import httpx

    addresses = [f"user{i * 10}@domain{i * 10 % 997}.example" for i in range(50_000)]
    addresses += [f"new{i}@example.org" for i in range(50_000)]
    start = time.perf_counter()
    got = httpx.post(
        f"http://127.0.0.1:{port}/v1/check",
        json=addresses,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    wall = time.perf_counter() - start
    lines = got.text.splitlines()
    if got.status_code != 200 or len(lines) != len(addresses):
        raise SystemExit(f"bulk check: {got.status_code}, {len(lines)} answers")
    if [json.loads(x)["address"] for x in lines[:3]] != addresses[:3]:
        raise SystemExit("bulk check answers out of order")
    return wall


# --- the policy service ----------------------------------------------------------------------


async def _policy_client(port: int, until: float, counts: list[int], k: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = k
    done = 0
    while time.perf_counter() < until:
        rcpt = f"user{i * 7919 % N}@domain{i * 7919 % N % 997}.example"
        i += 64
        writer.write(
            b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            b"client_address=127.0.0.1\nsender=news@sender.example\n"
            + f"recipient={rcpt}\n\n".encode()
        )
        answer = await reader.readuntil(b"\n\n")
        if not answer.startswith(b"action="):
            raise SystemExit(f"policy answer: {answer!r}")
        done += 1
    counts.append(done)
    writer.close()


def policy_load(port: int, connections: int, seconds: float) -> float:
    async def run() -> int:
        counts: list[int] = []
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_policy_client(port, until, counts, k) for k in range(connections)))
        return sum(counts)

    return asyncio.run(run()) / seconds


# --- stores -------------------------------------------------------------------------------


def token(url: str) -> str:
    from bounced.config import load_settings
    from bounced.db.store import Store
    from bounced.http.tokens import Scope, Tokens

    store = Store.open(load_settings(overrides={"database_url": url}))
    try:
        return Tokens(store).create(f"bench-{uuid.uuid4().hex[:6]}", [Scope.CHECK])
    finally:
        store.close()


def fill_postgres(base: str) -> tuple[str, str]:
    """A fresh schema with the same 1M rows as `fill` (COPY); its URL and name."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url = url.render_as_string(hide_password=False)
    subprocess.run([*BOUNCED, "--database-url", url, "db", "upgrade"],
                   check=True, env=environment(), capture_output=True)  # fmt: skip
    with psycopg.connect(base, options=f"-csearch_path={schema}") as conn, conn.cursor() as cur:
        columns = "address, domain, state, blocked_reason, auto_reason, returns, manual,"
        columns += " former_employee, last_reason, last_status, last_class, created_at, updated_at"
        with cur.copy(f"COPY address ({columns}) FROM STDIN") as copy:
            for i in range(N):
                blocked = i % 2 == 0
                copy.write_row((
                    f"user{i}@domain{i % 997}.example", f"domain{i % 997}.example",
                    "blocked" if blocked else "active", "hard" if blocked else None,
                    "hard" if blocked else None, int(blocked), False, False, "", "", "",
                    "2026-01-01 00:00:00+00", "2026-01-01 00:00:00+00",
                ))  # fmt: skip
        cur.execute("ANALYZE address")
    return url, schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --- the run ------------------------------------------------------------------------------


def checks_side_by_side(label, url, workers, work, args) -> dict[str, dict[str, float]]:
    tok = token(url)
    out = {}
    for name in ("bare", "bounced"):
        port = free_port()
        ctx = (
            bare_api(port, workers, work)
            if name == "bare"
            else bounced_api(url, port, workers, work)
        )
        with ctx:
            load(port, tok, args.connections, 1.0)  # warm-up
            out[name] = load(port, tok, args.connections, args.seconds)
    b, r = out["bounced"], out["bare"]
    print(
        f"{label:<22} {workers} worker(s)  bounced {b['rps']:7.0f}/s p50 {b['p50_ms']:5.2f} ms"
        f" p99 {b['p99_ms']:5.2f} ms | bare {r['rps']:7.0f}/s p50 {r['p50_ms']:5.2f} ms"
        f" p99 {r['p99_ms']:5.2f} ms | bounced/bare {b['rps'] / r['rps']:.2f}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("BOUNCED_TEST_DATABASE_URL"))
    args = parser.parse_args()
    sys.path.insert(0, str(BENCHES))
    with tempfile.TemporaryDirectory(prefix="bounced-bench-api-") as tmp:
        work = Path(tmp)
        db = work / "bounced.db"
        fill(db, N)
        sqlite_url = f"sqlite:///{db}"
        print(f"store: {N} addresses (half blocked); {args.connections} connections, "
              f"{args.seconds:.0f} s a measurement")  # fmt: skip
        checks_side_by_side("SQLite", sqlite_url, 1, work, args)
        pg = None
        if args.postgres:
            pg_url, schema = fill_postgres(args.postgres)
            pg = (pg_url, schema)
            for workers in (1, 2):
                checks_side_by_side("PostgreSQL", pg_url, workers, work, args)
        else:
            print("PostgreSQL: no --postgres or BOUNCED_TEST_DATABASE_URL; 2 workers not run")
        for label, url in [("SQLite", sqlite_url)] + ([("PostgreSQL", pg[0])] if pg else []):
            port = free_port()
            with bounced_api(url, port, 1, work):
                tok = token(url)
                walls = [bulk(port, tok) for _ in range(3)]
            print(f"bulk check 100000 addresses, {label}: best {min(walls):.2f} s (goal < 3 s)")
        port = free_port()
        argv = [*BOUNCED, "--database-url", sqlite_url, "policy-server", "--port", str(port)]
        with server(argv, port, work):
            policy_load(port, args.connections, 1.0)
            rate = policy_load(port, args.connections, args.seconds)
        print(f"policy-server, SQLite: {rate:.0f} requests/s over {args.connections} "
              "persistent connections (goal >= 5000/s)")  # fmt: skip
        if pg:
            drop_schema(args.postgres, pg[1])


if __name__ == "__main__":
    main()
