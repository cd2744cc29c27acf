"""The text → reason table (tests/rules_cases.toml): each case through a whole
parse of a DSN that carries it, so a case holds whatever layer decides it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from helpers.dsn import Rcpt, make_dsn

from bounced import parse

CASES = tomllib.loads((Path(__file__).with_name("rules_cases.toml")).read_text("utf-8"))["case"]
ADDRESS = "kim@example.org"


def test_every_case_names_only_known_keys() -> None:
    assert all(set(case) <= {"text", "status", "reason", "class"} for case in CASES)
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["text"][:60])
def test_a_diagnostic_gives_its_reason_and_class(case: dict[str, str]) -> None:
    status = case.get("status", "5.0.0")
    action = "delayed" if status[0] == "4" else "failed"
    raw = make_dsn(Rcpt(ADDRESS, status, action, diagnostic=case["text"]))
    (row,) = parse(raw).bounces
    assert (row.reason, row.bounce_class) == (case["reason"], case["class"]), row.rule
