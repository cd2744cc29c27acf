#!/usr/bin/env python3
"""Suppression-list import figures, in one run: `bounced import` of a 100 000-row SES file
into a fresh SQLite store and a fresh PostgreSQL schema.

For each database, timed as whole processes: the first import (every row new: the
policy blocks each address), the same file again (every row already known: the
idempotent re-run), and, as the reference measured in the same run, a plain bulk
INSERT of the same rows into a bare two-column table (sqlite3 / psycopg
executemany in one transaction): the floor cost of writing that many rows at all.
Printed: rows/s and bounced/raw. The store must then hold exactly the file's
addresses as blocked.

PostgreSQL comes from --postgres, else BOUNCED_TEST_DATABASE_URL, else the tests'
default URL; without a server that part is reported missing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BOUNCED = [sys.executable, "-m", "bounced"]
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env.pop("PYTHONUNBUFFERED", None)
    return env


def make_file(path: Path, rows: int) -> list[tuple[str, str]]:
    """An SES suppressed-destinations CSV: one address in ten a complaint."""
    data = [
        (f"user{i}@d{i % 997}.example", "COMPLAINT" if i % 10 == 0 else "BOUNCE")
        for i in range(rows)
    ]
    path.write_text("".join(f"{a},{r}\n" for a, r in data))
    return data


def timed_import(url: str, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [*BOUNCED, "--database-url", url, "import", "ses", str(path)],
        capture_output=True,
        text=True,
        env=environment(),
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bounced import failed ({done.returncode}): {done.stderr[-500:]}")
    return wall, done.stderr.strip().splitlines()[-1]


def raw_sqlite(path: Path, data: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE raw (address TEXT PRIMARY KEY, reason TEXT)")
    with con:
        con.executemany("INSERT INTO raw VALUES (?, ?)", data)
    con.close()
    return time.perf_counter() - start


def raw_postgres(url: str, schema: str, data: list[tuple[str, str]]) -> float:
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(url, options=f"-csearch_path={schema}") as conn:
        conn.execute("CREATE TABLE raw (address TEXT PRIMARY KEY, reason TEXT)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO raw VALUES (%s, %s)", data)
    return time.perf_counter() - start


def blocked(url: str) -> int:
    from bounced import Suppressions

    with Suppressions.open(url) as sup:
        return sum(1 for r in sup.list() if r["state"] == "blocked")


def report(name: str, rows: int, first: float, again: float, raw: float, check: int) -> None:
    print(
        f"{name:10s} import {rows / first:8,.0f} rows/s ({first:5.1f} s)   "
        f"again {rows / again:8,.0f} rows/s ({again:5.1f} s)   "
        f"raw INSERT {rows / raw:9,.0f} rows/s   bounced/raw {raw / first:.3f}   "
        f"blocked {check:,}{'' if check == rows else '  MISMATCH'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("BOUNCED_TEST_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        file = work / "suppressed.csv"
        data = make_file(file, args.rows)
        url = f"sqlite:///{work / 'bounced.db'}"
        first, summary = timed_import(url, file)
        again, _ = timed_import(url, file)
        raw = raw_sqlite(work / "raw.db", data)
        report("SQLite", args.rows, first, again, raw, blocked(url))
        print(f"{'':10s} {summary}")
        postgres(args.postgres or PG_DEFAULT, file, data, args.rows)


def postgres(base: str, file: Path, data: list[tuple[str, str]], rows: int) -> None:
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True, connect_timeout=2) as conn:
            schema = "bench_" + uuid.uuid4().hex[:12]
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # no server: say so, measure the rest
        print(f"PostgreSQL missing ({exc})")
        return
    from sqlalchemy.engine import make_url

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        first, summary = timed_import(url_text, file)
        again, _ = timed_import(url_text, file)
        raw = raw_postgres(base, schema, data)
        report("PostgreSQL", rows, first, again, raw, blocked(url_text))
        print(f"{'':10s} {summary}")
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
