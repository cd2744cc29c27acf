"""`clean` against the suppression store, on SQLite and PostgreSQL: blocked, former
employee, complaint (rejects) and recent soft returns (risky)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers.dsn import make_dsn, soft

from bounced.clean import CleanOptions, clean
from bounced.suppressions import Suppressions

ARF = Path(__file__).resolve().parent.parent / "fixtures" / "dsn_samples" / "arf-abuse-02.eml"
NO_DNS = CleanOptions(dns=False)


def test_what_the_store_knows_decides(database_url):
    with Suppressions.open(database_url, actor="test") as sup:
        sup.block(["blocked@example.org"], note="asked")
        sup.former_employee(["gone@example.org"])
        list(sup.ingest_many([("arf", ARF.read_bytes())]))  # ola.nordmann@example.com
        sup.ingest(make_dsn(soft("full@example.org")), source="soft")
        sup.ingest(make_dsn("hard@example.org"), source="hard")
        addresses = [
            "Blocked@Example.org",
            "gone@example.org",
            "ola.nordmann@example.com",
            "full@example.org",
            "hard@example.org",
            "fresh@example.org",
        ]
        rows = list(clean(addresses, options=NO_DNS, suppressions=sup))
    assert [(r.status.value, r.reason, r.detail) for r in rows] == [
        ("reject", "blocked", "blocked (manual)"),
        ("reject", "former_employee", "former employee"),
        ("reject", "complaint", "complained (spam report)"),
        ("risky", "soft_returns", "recent soft returns"),
        ("reject", "blocked", "blocked (hard)"),
        ("ok", "", ""),
    ]


def test_soft_returns_outside_the_window_are_forgotten(database_url):
    # An hour before a window of a minute: a window of 0 s, as here before, turned on
    # the wall clock never stepping back between the ingest and the check.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with Suppressions.open(database_url, actor="test") as sup:
        sup.ingest(make_dsn(soft("full@example.org")), source="soft", received_at=an_hour_ago)
    from bounced.config import load_settings

    settings = load_settings(overrides={"database_url": database_url, "clean.returns_window": "1m"})
    with Suppressions.open(settings) as sup:
        (row,) = clean(["full@example.org"], options=NO_DNS, suppressions=sup)
    assert (row.status.value, row.reason) == ("ok", ""), row
