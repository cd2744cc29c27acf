"""The rules files: they load, and their precedence never depends on file order."""

from __future__ import annotations

from collections import defaultdict

import pytest

from bounced.dsn.report import Reason
from bounced.rules import RulesError, load, phrase_rules


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
