"""Verdicts over HTTP: one address, and the bulk check, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from dsn_builder import make_dsn, soft
from http_support import Api


@pytest.fixture
def api(database_url):
    api = Api.start(database_url)
    yield api
    api.close()


def test_an_unknown_address_is_sendable_and_a_blocked_one_is_not(api):
    api.sup.block(["gone@example.com"], note="asked")
    fresh = api.client.get("/v1/suppressions/New@Example.com", headers=api.auth("check"))
    assert fresh.status_code == 200
    assert fresh.json() | {"address": "", "normalized": ""} == {
        "address": "",
        "normalized": "",
        "sendable": True,
        "verdict": "send",
        "state": None,
        "reason": "",
        "blocked_at": None,
        "returns": 0,
        "last_bounce": None,
    }
    blocked = api.client.get("/v1/suppressions/gone@example.com", headers=api.auth("check")).json()
    assert (blocked["sendable"], blocked["state"], blocked["reason"]) == (
        False,
        "blocked",
        "manual",
    )
    assert blocked["blocked_at"] is not None


def test_a_verdict_tells_the_last_bounce(api):
    api.sup.ingest(make_dsn(soft("full@example.com")), source="test")
    (row,) = api.sup.list()
    got = api.client.get("/v1/suppressions/full@example.com", headers=api.auth("check")).json()
    assert got["returns"] == row["returns"] == 1
    assert got["sendable"] is True
    assert got["last_bounce"]["reason"] == row["last_reason"]
    assert got["last_bounce"]["status"] == row["last_status"]


@pytest.mark.parametrize("accept", ["application/x-ndjson", "application/json"])
def test_the_bulk_check_answers_every_address_in_order(api, accept):
    api.sup.block(["b3@example.com"])
    addresses = [f"b{i}@example.com" for i in range(2500)] + ["not an address"]
    got = api.client.post(
        "/v1/check", json=addresses, headers=api.auth("check") | {"Accept": accept}
    )
    assert got.status_code == 200
    if accept == "application/json":
        answers = got.json()
    else:
        answers = [json.loads(line) for line in got.text.splitlines()]
    assert [a["address"] for a in answers] == addresses
    assert [a["verdict"] for a in answers[:5]] == ["send", "send", "send", "blocked", "send"]
    assert answers[-1]["verdict"] == "invalid" and "@" in answers[-1]["reason"]


def test_the_bulk_check_reads_text_lines(api):
    got = api.client.post(
        "/v1/check",
        content="a@example.com\n\n  B@example.com \n",
        headers=api.auth("check") | {"Content-Type": "text/plain"},
    )
    assert [json.loads(x)["normalized"] for x in got.text.splitlines()] == [
        "a@example.com",
        "b@example.com",
    ]
