"""Signed VERP: round trips, case folding, and tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounced import verp
from bounced.errors import ConfigError

SECRET = "s3cret"
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

recipients = st.text(min_size=1, max_size=40).map(lambda local: f"{local}@example.org")
keys = st.text(max_size=60)


def _encode(recipient: str, key: str, secret: str = SECRET) -> str:
    return verp.encode(recipient, key, secret=secret, prefix="bounces", domain="b.example.com")


def _token(address: str) -> str:
    return address.rpartition("@")[0].partition("+")[2]


@given(recipients, keys)
def test_round_trip(recipient, key):
    address = _encode(recipient, key)
    assert address.startswith("bounces+") and address.endswith("@b.example.com")
    assert verp.decode(address, secret=SECRET) == verp.Token(recipient, key, True)


def test_utf8_local_part():
    address = _encode("jürgen.müller@exämple.de", "<abc@mail>")
    token = verp.decode(address, secret=SECRET)
    assert token == verp.Token("jürgen.müller@exämple.de", "<abc@mail>", True)
    assert _token(address).isascii()


@given(recipients, keys, st.randoms())
def test_any_case_decodes(recipient, key, rnd):
    address = _encode(recipient, key)
    folded = "".join(c.upper() if rnd.random() < 0.5 else c for c in address)
    assert verp.decode(folded, secret=SECRET) == verp.Token(recipient, key, True)


@given(recipients, keys, st.data())
def test_any_changed_character_is_refused(recipient, key, data):
    address = _encode(recipient, key)
    token = _token(address)
    i = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from(ALPHABET.replace(token[i], "")))
    forged = address.replace(token, token[:i] + other + token[i + 1 :])
    result = verp.decode(forged, secret=SECRET)
    assert result is not None and not result.valid and result.reason


@given(recipients, keys)
def test_other_secret_is_refused(recipient, key):
    result = verp.decode(_encode(recipient, key, "other"), secret=SECRET)
    assert result == verp.Token(recipient, key, False, "bad signature")


@pytest.mark.parametrize(
    "address", ["someone@example.com", "bounces@b.example.com", "bounces+@b.example.com", ""]
)
def test_not_a_verp_address(address):
    assert verp.decode(address, secret=SECRET) is None


def test_other_prefix_is_not_ours():
    address = _encode("a@example.org", "k")
    assert verp.decode(address, secret=SECRET, prefix="returns") is None
    assert verp.decode(address, secret=SECRET, prefix="BOUNCES").valid


@pytest.mark.parametrize("token", ["!!!", "a", "aaaaaaaa", "0189"])
def test_garbage_token(token):
    result = verp.decode(f"bounces+{token}@b.example.com", secret=SECRET)
    assert result is not None and not result.valid


def test_encode_needs_secret_and_domain():
    with pytest.raises(ConfigError):
        _encode("a@example.org", "k", secret="")
    with pytest.raises(ConfigError):
        verp.encode("a@example.org", "k", secret=SECRET, prefix="b", domain="")
