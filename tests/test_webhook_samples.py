"""The providers' documented webhook payloads, each checked against the facts written
beside it.

Every `fixtures/webhooks/PROVIDER-NAME.json` is a payload as the provider documents it
and has a `PROVIDER-NAME.expected.json`: `{"rows": [...], "ignored": N, "unreadable":
[reasons]}` (and `subscribe_url` for an SNS confirmation). Each payload is signed (or
given credentials) with keys made here, verified by the provider's verifier and
read; rows list the fields their author was sure of, and exactly those are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.samples import ROW_FIELDS as DSN_FIELDS
from helpers.webhook_signing import Signer, signed_request

from bounced.dsn import BounceClass, Kind, Reason
from bounced.providers.registry import READERS, WEBHOOK_PROVIDERS, verifier

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
EXPECTED = ".expected.json"

#: Expectation keys and the `Bounce` attribute each one checks: the DSN samples' and one more.
ROW_FIELDS = DSN_FIELDS | {"remote_mta": "remote_mta"}

PAYLOADS = sorted(p for p in SAMPLES.glob("*.json") if not p.name.endswith(EXPECTED))


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + EXPECTED).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_payload_reads_as_expected(path: Path, signer: Signer) -> None:
    provider = path.stem.split("-")[0]
    check = verifier(provider, signer.settings(), fetch=signer.fetch)
    assert check is not None
    payload = check.verify(signed_request(signer, provider, json.loads(path.read_text())))
    events = READERS[provider](payload)
    rows = [
        {"notice": n.notice} | {k: str(getattr(b, a) or "") for k, a in ROW_FIELDS.items()}
        for n in events.notices
        for b in n.bounces
    ]
    expected = _expected(path)
    context = f"rows={rows!r}"
    assert events.ignored == expected["ignored"], context
    assert [u.reason for u in events.unreadable] == expected["unreadable"], context
    assert events.subscribe_url == expected.get("subscribe_url", "")
    assert len(rows) == len(expected["rows"]), context
    for got, want in zip(rows, expected["rows"], strict=True):
        assert {k: got[k] for k in want} == want, context


def test_every_payload_has_expectations_and_every_provider_samples() -> None:
    stems = {p.stem for p in PAYLOADS}
    expectations = {p.name.removesuffix(EXPECTED) for p in SAMPLES.glob("*" + EXPECTED)}
    assert stems == expectations
    assert {s.split("-")[0] for s in stems} == set(WEBHOOK_PROVIDERS)


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_expectations_are_well_formed(path: Path) -> None:
    expected = _expected(path)
    assert set(expected) <= {"rows", "ignored", "unreadable", "subscribe_url"}
    for row in expected["rows"]:
        assert set(row) <= {"notice", *ROW_FIELDS}
        assert {"notice", "recipient", "kind"} <= set(row)
        assert row["notice"].startswith(path.stem.split("-")[0] + ":")
        assert row["kind"] in {k.value for k in Kind}
        assert row.get("reason") in {None, *(r.value for r in Reason)}
        assert row.get("class") in {None, *(c.value for c in BounceClass)}
        if row["kind"] in ("failed", "delayed"):
            assert {"class", "reason", "status"} <= set(row), "a failure says all three"
        if row["kind"] == "delayed":
            assert row["class"] == "soft"
