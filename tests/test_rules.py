"""The rules files: they load, refuse keys they do not know, keep what each
promises, and their precedence never depends on file order."""

from __future__ import annotations

import copy
import re
import tomllib
from collections import defaultdict
from importlib import resources

import pytest

from bounced.dsn.report import DEFAULT_HARD_REASONS, Reason
from bounced.rules import SCHEMA, RulesError, check_keys, load, phrase_rules


def test_rules_load_and_name_only_known_reasons() -> None:
    rules = load()
    assert rules.phrases and rules.statuses and rules.families
    named = {r.reason for r in rules.phrases} | {r.reason for r in rules.providers}
    assert named <= set(Reason)


def test_phrase_groups_of_different_reasons_never_share_a_priority() -> None:
    """Two reasons' phrases matching one text must not tie: the winner would then
    be whichever group comes first in the file."""
    reasons_at: dict[int, set[Reason]] = defaultdict(set)
    for rule in load().phrases:
        reasons_at[rule.priority].add(rule.reason)
    shared = {p: sorted(r) for p, r in reasons_at.items() if len(r) > 1}
    assert not shared


def test_a_phrase_under_two_reasons_is_refused() -> None:
    data = {
        "reason": [
            {"name": "user_unknown", "priority": 70, "phrases": ["no such user"]},
            {"name": "filtered", "priority": 60, "phrases": ["no such user"]},
        ]
    }
    with pytest.raises(RulesError, match="no such user"):
        phrase_rules(data)


@pytest.mark.parametrize("phrase", ["User Unknown", "user  unknown", " user unknown"])
def test_phrases_must_be_lower_case_and_single_spaced(phrase: str) -> None:
    data = {"reason": [{"name": "user_unknown", "priority": 70, "phrases": [phrase]}]}
    with pytest.raises(RulesError):
        phrase_rules(data)


def test_an_unknown_reason_is_refused() -> None:
    data = {"reason": [{"name": "gone_fishing", "priority": 70, "phrases": ["x"]}]}
    with pytest.raises(RulesError, match="gone_fishing"):
        phrase_rules(data)


# --- each rules file: only known keys, and what it promises -------------------------------

RULES_FILES = sorted(SCHEMA)


def _raw(name: str) -> dict:
    return tomllib.loads(resources.files("bounced.rules").joinpath(name).read_text("utf-8"))


def _tables(data: dict, path: str) -> list[dict]:
    """The tables of `data` at a SCHEMA path ("" the top, "a[]" each entry of a)."""
    tables = [data]
    for step in path.split(".") if path else []:
        key, many = step.removesuffix("[]"), step.endswith("[]")
        nested = [t.get(key) for t in tables]
        tables = [e for v in nested if v for e in (v if many else [v])]
    return tables


@pytest.mark.parametrize("name", RULES_FILES)
def test_every_rules_file_holds_only_known_keys(name: str) -> None:
    check_keys(name, _raw(name))


@pytest.mark.parametrize(
    ("name", "path"), [(n, p) for n in RULES_FILES for p in SCHEMA[n]], ids=lambda v: v or "top"
)
def test_a_misspelled_key_is_refused_wherever_it_stands(name: str, path: str) -> None:
    data = copy.deepcopy(_raw(name))
    tables = _tables(data, path)
    assert tables, f"{name} has no table at {path!r}: the schema names one it does not use"
    tables[-1]["phrase"] = ["typo"]
    with pytest.raises(RulesError, match="unknown key 'phrase'"):
        check_keys(name, data)


#: The registry of enhanced status codes (RFC 3463, RFC 5248's IANA registry),
#: subject.detail of every failure code it lists.
REGISTRY = [
    "0.0", *(f"1.{d}" for d in range(11)), *(f"2.{d}" for d in range(5)),
    *(f"3.{d}" for d in range(6)), *(f"4.{d}" for d in range(8)),
    *(f"5.{d}" for d in range(7)), *(f"6.{d}" for d in range(11)),
    *(f"7.{d}" for d in range(31)),
]  # fmt: skip


def test_status_toml_gives_every_registered_code_a_reason() -> None:
    statuses = load().statuses
    assert [c for c in REGISTRY if f"x.{c}" not in statuses] == []


def test_status_toml_names_codes_in_their_own_shapes() -> None:
    rules = load()
    assert all(re.fullmatch(r"x\.\d{1,3}\.\d{1,3}", code) for code in rules.statuses)
    assert all(re.fullmatch(r"[245]\d\d", code) for code in rules.replies)


def test_providers_toml_rows_each_name_where_they_apply() -> None:
    for row in load().providers:
        assert row.hosts or row.domains, row.name


def test_families_toml_families_can_each_be_recognised() -> None:
    rules = load()
    for family in rules.families:
        assert family.senders or family.subjects or family.markers or family.headers, family.name
    assert rules.footers and rules.challenge["markers"]


def test_reasons_toml_hard_when_words_never_overlap_their_unless_words() -> None:
    for rule in load().hard_when:
        assert rule.reason not in DEFAULT_HARD_REASONS
        assert not [p for p in rule.phrases if any(u in p for u in rule.unless)]


def test_a_footer_marker_is_never_a_reason_phrase() -> None:
    """A marker cuts text away; were it also a phrase, the words it stands for
    could never decide anything."""
    rules = load()
    assert set(rules.footers) & set(rules.phrase_index) == set()


def test_every_footer_holds_one_of_the_footer_words() -> None:
    """The words are looked for first; a footer without one would never be cut."""
    rules = load()
    assert [f for f in rules.footers if not any(w in f for w in rules.footer_words)] == []


def test_family_marks_come_in_family_order() -> None:
    """recognise() stops at the first body marker of a family no better than one found."""
    marks = load().family_marks
    for flat in (marks.senders, marks.subjects, marks.headers, marks.markers):
        assert [i for _, i in flat] == sorted(i for _, i in flat)
