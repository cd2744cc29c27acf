"""bounced.rules.Phrases: one Aho-Corasick pass finds exactly what a substring
test per phrase would, in the phrases' order, for any text."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounced.errors import RulesError
from bounced.rules import Phrases, load

_WORDS = st.sampled_from(["user", "unknown", "no", "such", "mailbox", "full", "ü", "受信", " "])
_TEXT = st.lists(_WORDS, max_size=30).map("".join)


@given(st.lists(_TEXT.filter(bool), min_size=1, max_size=12), _TEXT)
def test_found_is_every_phrase_in_the_text_in_order(phrases, text) -> None:
    unique = list(dict.fromkeys(phrases))
    assert Phrases(phrases).found(text) == [p for p in unique if p in text]


def test_every_reason_phrase_is_found_in_a_text_that_holds_it() -> None:
    scan = load().phrase_scan
    for phrase in scan.strings:
        assert phrase in scan.found(f"smtp; 550 {phrase}.")


def test_an_empty_phrase_is_refused() -> None:
    with pytest.raises(RulesError):
        Phrases(["user unknown", ""])


def test_phrases_survive_pickling() -> None:
    phrases = Phrases(["over quota", "user unknown"])
    again = pickle.loads(pickle.dumps(phrases))
    assert again == phrases
    assert again.found("550 user unknown; over quota") == ["over quota", "user unknown"]
