"""The bundled samples, each checked against the expectations written beside it.

Every `fixtures/dsn_samples/NAME.eml` has a `NAME.expected.json`:
`{"kind": <report kind or null>, "rows": [{field: value, ...}, ...]}`. Rows are in
message order and list only the fields their author was sure of; the driver checks
exactly those. `KNOWN_NOT_PARSED` names the samples the parser does not get right
yet: they are strict xfails, so the list can only shrink (a sample that starts
passing fails the run until its name is removed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.samples import ROW_FIELDS

from bounced import Bounce, BounceClass, Kind, Reason, parse
from bounced.dsn import DEFAULT_HARD_REASONS
from bounced.rules import load

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dsn_samples"
EXPECTED_SUFFIX = ".expected.json"


#: Samples the parser does not read correctly yet, each with why. Only ever shrinks.
KNOWN_NOT_PARSED: dict[str, str] = {}


def _expected_path(eml: Path) -> Path:
    return eml.with_name(eml.stem + EXPECTED_SUFFIX)


def _load_expected(eml: Path) -> dict:
    return json.loads(_expected_path(eml).read_text(encoding="utf-8"))


def _sample_params() -> list:
    return [
        pytest.param(
            eml,
            id=eml.stem,
            marks=[pytest.mark.xfail(reason=KNOWN_NOT_PARSED[eml.stem], strict=True)]
            if eml.stem in KNOWN_NOT_PARSED
            else [],
        )
        for eml in sorted(SAMPLES_DIR.glob("*.eml"))
    ]


def _normal(key: str, value: object) -> str | None:
    """A value as the expectations spell it: enums by their value, Message-IDs
    without angle brackets (both spellings name the same id)."""
    if value is None:
        return None
    text = str(value)
    if key == "original_message_id":
        return text.strip().removeprefix("<").removesuffix(">")
    return text


def _actual(row: Bounce, key: str) -> str | None:
    return _normal(key, getattr(row, ROW_FIELDS[key]))


@pytest.mark.parametrize("eml", _sample_params())
def test_sample_parses_as_expected(eml: Path) -> None:
    expected = _load_expected(eml)
    report = parse(eml.read_bytes())
    got_kind = None if report.kind is None else str(report.kind)
    rows = [{key: _actual(row, key) for key in ROW_FIELDS} for row in report.bounces]
    context = f"report kind={got_kind!r}, rows={rows!r}, problems={report.problems!r}"
    assert got_kind == expected["kind"], context
    assert len(report.bounces) == len(expected["rows"]), context
    for index, (row, want) in enumerate(zip(report.bounces, expected["rows"], strict=True)):
        got = {key: _actual(row, key) for key in want}
        wanted = {key: _normal(key, value) for key, value in want.items()}
        assert got == wanted, f"row {index}: {context}"


def test_every_sample_has_expectations_and_every_expectation_a_sample() -> None:
    messages = {p.stem for p in SAMPLES_DIR.glob("*.eml")}
    expectations = {
        p.name.removesuffix(EXPECTED_SUFFIX) for p in SAMPLES_DIR.glob("*" + EXPECTED_SUFFIX)
    }
    assert messages, f"no samples in {SAMPLES_DIR}"
    assert messages - expectations == set(), "samples without NAME.expected.json"
    assert expectations - messages == set(), "expectations without NAME.eml"
    others = {
        p.name
        for p in SAMPLES_DIR.iterdir()
        if p.suffix != ".eml" and not p.name.endswith(EXPECTED_SUFFIX)
    }
    assert others == set(), "files in the samples directory that the driver ignores"


def test_known_not_parsed_names_existing_samples() -> None:
    names = {p.stem for p in SAMPLES_DIR.glob("*.eml")}
    assert set(KNOWN_NOT_PARSED) - names == set()


@pytest.mark.parametrize("eml", sorted(SAMPLES_DIR.glob("*.eml")), ids=lambda p: p.stem)
def test_expectations_are_well_formed(eml: Path) -> None:
    """Catch typos and rule breaks in the expectations themselves, not in the parser."""
    expected = _load_expected(eml)
    assert set(expected) == {"kind", "rows"}
    kinds = {k.value for k in Kind}
    assert expected["kind"] is None or expected["kind"] in kinds
    if expected["kind"] is None:
        assert expected["rows"] == [], "a message that is not a bounce reports nothing"
    else:
        assert expected["rows"], "a bounce reports at least one recipient"
    for row in expected["rows"]:
        assert set(row) <= set(ROW_FIELDS), f"unknown keys {set(row) - set(ROW_FIELDS)}"
        assert {"recipient", "kind"} <= set(row), "every row names its recipient and kind"
        assert row["kind"] in kinds
        assert row.get("class") in {None, *(c.value for c in BounceClass)}
        assert row.get("reason") in {None, *(r.value for r in Reason)}
        if row["kind"] not in (Kind.FAILED.value, Kind.DELAYED.value):
            assert row.get("class") is None, "only failures and delays have a class"
        if row["kind"] == Kind.DELAYED.value:
            assert row.get("class") in (None, BounceClass.SOFT.value), "a delay is soft"
        if row.get("class") == BounceClass.HARD.value:
            can_be_hard = {*DEFAULT_HARD_REASONS, *(r.reason for r in load().hard_when)}
            assert row.get("reason") in {r.value for r in can_be_hard}
            assert row.get("status", "5")[0] == "5", "hard needs a permanent status"
