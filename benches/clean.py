"""How fast `bounced clean` is: a million rows without DNS, and with DNS against a
local server (tests/dns_server.py) where the cost is bounded by the distinct domains.

    .venv/bin/python benches/clean.py                    # 1 000 000 rows, DNS off and on
    .venv/bin/python benches/clean.py --rows 200000 --domains 5000 --json

The list is generated (seeded): a name, an address and a date per row, over
`--domains` distinct domains, with typos, role accounts, duplicates and invalid
addresses sprinkled in. Each run is the real command (`python -m bounced clean`, a
process on one core). Reference figures from the same run:

- `csv copy`: reading and writing the same CSV with the csv module and nothing
  else, the floor any cleaner pays;
- `email-validator`: validate_email on every row (what a script would do), DNS off;
- `sequential dnspython`: one blocking dns.resolver query per distinct domain, the
  same questions bounced asks, one at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dns_server import DnsServer  # noqa: E402  (the test server, on loopback)

NAMES = ["Ann", "Bo", "Chloé", "Dmitri", "Eve", "Fatima", "Günther", "Hiro", "Ines", "José"]
ROLES = ["info", "sales", "admin", "noreply"]


def generate(path: Path, rows: int, domains: int, seed: int = 1) -> list[str]:
    """Write the list; return its distinct domains."""
    rng = random.Random(seed)
    names = [f"d{i}.example" for i in range(domains)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["first_name", "email", "signed_up"])
        for i in range(rows):
            domain = rng.choice(names)
            roll = rng.random()
            if roll < 0.01:
                address = f"user{i}@gmial.com"
            elif roll < 0.02:
                address = f"{rng.choice(ROLES)}@{domain}"
            elif roll < 0.03:
                address = f"user{rng.randrange(max(i, 1))}@{domain}"  # likely a duplicate
            elif roll < 0.035:
                address = f"user{i}@@{domain}"
            else:
                address = f"User.{i}@{domain}"
            writer.writerow([rng.choice(NAMES), address, f"2024-{i % 12 + 1:02d}-01"])
    return names


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the command: on a shared machine the CPU time
    is what the command itself cost."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def csv_copy(source: Path, target: Path) -> float:
    start = time.perf_counter()
    with source.open(newline="") as src, target.open("w", newline="") as dst:
        writer = csv.writer(dst)
        for row in csv.reader(src):
            writer.writerow(row)
    return time.perf_counter() - start


def email_validator_rows(source: Path, limit: int) -> float:
    """Seconds per row of validate_email over the first `limit` rows."""
    from email_validator import EmailNotValidError, validate_email

    with source.open(newline="") as src:
        reader = csv.reader(src)
        next(reader)
        addresses = [row[1] for _, row in zip(range(limit), reader, strict=False)]
    start = time.perf_counter()
    for address in addresses:
        with contextlib.suppress(EmailNotValidError):
            validate_email(address, check_deliverability=False)
    return (time.perf_counter() - start) / len(addresses)


def sequential_dns(server: DnsServer, domains: list[str]) -> float:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    resolver.cache = None
    start = time.perf_counter()
    for domain in domains:
        with contextlib.suppress(dns.resolver.NXDOMAIN):
            resolver.resolve(domain, "MX")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--domains", type=int, default=20_000)
    parser.add_argument("--dns-rows", type=int, default=None, help="rows of the DNS run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    python = sys.executable
    figures: dict[str, float | int] = {"rows": args.rows, "domains": args.domains}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "list.csv"
        domains = generate(source, args.rows, args.domains)
        figures["csv_copy_s"] = csv_copy(source, folder / "copy.csv")
        per_row = email_validator_rows(source, 50_000)
        figures["email_validator_s"] = per_row * args.rows
        base = [python, "-m", "bounced", "clean", str(source), "-o", str(folder / "out.csv")]
        off = [*base, "--no-dns", "--no-suppression"]
        figures["dns_off_s"], figures["dns_off_cpu_s"] = timed(off, env)
        store = f"sqlite:///{folder / 'store.db'}"
        with_store = [python, "-m", "bounced", "--database-url", store, *base[3:], "--no-dns"]
        figures["dns_off_store_s"], figures["dns_off_store_cpu_s"] = timed(with_store, env)
        # DNS: one domain in ten does not exist, the rest has an MX.
        zone = {d: {"MX": [f"10 mx.{d}."]} for i, d in enumerate(domains) if i % 10}
        dns_rows = args.dns_rows or args.rows
        dns_source = source
        if dns_rows != args.rows:
            dns_source = folder / "dns.csv"
            generate(dns_source, dns_rows, args.domains)
        with DnsServer(zone) as server:
            dns_env = env | {"BOUNCED_DNS_NAMESERVERS": server.address}
            dns_cmd = [python, "-m", "bounced", "clean", str(dns_source), "-o",
                       str(folder / "dns-out.csv"), "--no-suppression"]  # fmt: skip
            figures["dns_on_s"], figures["dns_on_cpu_s"] = timed(dns_cmd, dns_env)
            figures["dns_queries"] = sum(server.queries.values())
            figures["dns_mx_queries"] = sum(n for (_, t), n in server.queries.items() if t == "MX")
        with DnsServer(zone) as server:
            figures["sequential_dns_s"] = sequential_dns(server, domains)
        figures["dns_rows"] = dns_rows
    report(figures, as_json=args.json)


def report(f: dict[str, float | int], *, as_json: bool) -> None:
    rows, dns_rows = f["rows"], f["dns_rows"]
    f["dns_off_rows_per_s"] = rows / f["dns_off_s"]
    f["dns_on_rows_per_s"] = dns_rows / f["dns_on_s"]
    f["dns_on_domains_per_s"] = f["domains"] / f["dns_on_s"]
    if as_json:
        print(json.dumps(f, indent=2))
        return
    print(f"{rows:,} rows, {f['domains']:,} distinct domains")
    print(f"  DNS off, no store   {f['dns_off_s']:7.1f} s  {f['dns_off_rows_per_s']:9,.0f} rows/s"
          f"  (CPU {f['dns_off_cpu_s']:.1f} s)")  # fmt: skip
    print(
        f"  DNS off, SQLite     {f['dns_off_store_s']:7.1f} s  (CPU "
        f"{f['dns_off_store_cpu_s']:.1f} s; an empty store, one query per 1000 rows)"
    )
    print(f"  csv copy            {f['csv_copy_s']:7.1f} s  (bounced = "
          f"{f['dns_off_s'] / f['csv_copy_s']:.1f}x the csv module's copy)")  # fmt: skip
    print(f"  email-validator     {f['email_validator_s']:7.1f} s  (projected; bounced is "
          f"{f['email_validator_s'] / f['dns_off_s']:.1f}x faster)")  # fmt: skip
    print(f"{dns_rows:,} rows with DNS on (local server)")
    print(
        f"  bounced clean       {f['dns_on_s']:7.1f} s  {f['dns_on_rows_per_s']:9,.0f} rows/s, "
        f"{f['dns_on_domains_per_s']:,.0f} domains/s (CPU {f['dns_on_cpu_s']:.1f} s)"
    )
    print(f"  queries             {f['dns_queries']:,} ({f['dns_mx_queries']:,} MX for "
          f"{f['domains']:,} domains)")  # fmt: skip
    print(
        f"  sequential dnspython{f['sequential_dns_s']:7.1f} s  for the same MX questions "
        f"(bounced = {f['sequential_dns_s'] / f['dns_on_s']:.1f}x its speed, rows included)"
    )


if __name__ == "__main__":
    main()
