"""Address normalisation: one canonical spelling, and a reason for every rejection."""

from __future__ import annotations

import subprocess
import sys

import email_validator
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bounced.addresses import (
    SPECIAL_USE_DOMAINS,
    domain_of,
    normalize,
    normalize_allow_entry,
    normalize_many,
    split_plain,
    split_validated,
)
from bounced.errors import InvalidAddress

# Address-shaped text that often lands on the edges of the fast path: dots at the
# ends, double dots, hyphens at label edges, long labels, special-use TLDs.
NEARLY = st.builds(
    "{}@{}".format,
    st.text("aZ09.-_+!'~`=", min_size=0, max_size=70),
    st.lists(
        st.one_of(st.text("aZ09-", min_size=0, max_size=70), st.sampled_from(["test", "local"])),
        min_size=1,
        max_size=4,
    ).map(".".join),
)

WRAPPERS = [
    "{}",
    " {} ",
    "<{}>",
    "mailto:{}",
    "MAILTO:{}?subject=x",
    '"{}"',
    "'{}'",
    "Some Name <{}>",
    '"Name, Some" <{}>',
    "rfc822; {}",
    "{},",
    "\t<mailto:{}>;\n",
]


@given(st.one_of(st.emails(), NEARLY))
@example("a@b.xn--abc")
@example("a@a--b.com")
@example("x" * 64 + "@example.com")
@example("x" * 65 + "@example.com")
def test_fast_path_agrees_with_email_validator(text):
    fast = split_plain(text)
    if fast is None:
        return
    local, domain = split_validated(text)
    assert fast == (local, domain)


def test_the_fast_path_refuses_the_domains_email_validator_refuses():
    assert frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES) == SPECIAL_USE_DOMAINS


def test_email_validator_is_imported_only_for_an_address_off_the_fast_path():
    code = (
        "import sys\n"
        "from bounced.addresses import normalize, normalize_many\n"
        "normalize('Someone@Example.COM'); normalize_many(['a@b.example', 'c@d.example'])\n"
        "print('email_validator' in sys.modules)\n"
        "normalize('\"quoted local\"@example.com')\n"
        "print('email_validator' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"], done.stderr


@given(st.emails(), st.sampled_from(WRAPPERS))
def test_junk_around_an_address_does_not_matter(address, wrapper):
    assert normalize(wrapper.format(address)) == normalize(address)


@given(st.emails())
def test_normal_form_is_stable(address):
    once = normalize(address)
    assert normalize(once) == once
    assert once == once.strip()
    assert domain_of(once) == domain_of(once).lower()


@given(st.emails().filter(str.isascii))
def test_case_is_folded_unless_configured(address):
    assert normalize(address.upper()) == normalize(address.lower())
    sensitive = normalize(address.upper(), case_sensitive_local_part=True)
    local, _, domain = sensitive.rpartition("@")
    assert domain == domain.lower()
    assert local == address.upper().rpartition("@")[0]


@given(st.text(max_size=80))
def test_anything_else_is_rejected_with_a_reason(text):
    try:
        normalize(text)
    except InvalidAddress as exc:
        assert exc.reason
        assert exc.text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<John.Doe@EXAMPLE.com>", "john.doe@example.com"),
        ("John Doe <jd@Bücher.de>", "jd@xn--bcher-kva.de"),
        ("jd@xn--bcher-kva.de", "jd@xn--bcher-kva.de"),
        ("Pelé@Example.com", "pelé@example.com"),
        ('"a b"@example.com', '"a b"@example.com'),
        ("user@example.com.", "user@example.com"),
    ],
)
def test_known_spellings(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("no-at-sign", "@"),
        ("a..b@example.com", "two periods"),
        ("a@printer.local", "special-use"),
        ("@example.com", "before the @"),
    ],
)
def test_invalid_addresses_say_why(text, reason):
    with pytest.raises(InvalidAddress, match=reason):
        normalize(text)


def test_allow_entries_are_addresses_or_domains():
    assert normalize_allow_entry("@Bücher.DE") == "@xn--bcher-kva.de"
    assert normalize_allow_entry("<CEO@Example.com>") == "ceo@example.com"
    with pytest.raises(InvalidAddress):
        normalize_allow_entry("@")


@pytest.mark.parametrize("text", ["john.smith@example.com", "A+tag@Mail.Example.co.uk"])
def test_plain_addresses_take_the_fast_path(text):
    assert split_plain(text) == split_validated(text)
    assert split_plain(text) is not None


@given(
    st.one_of(
        st.lists(st.emails(), max_size=30),  # plain batches take the bulk path
        st.lists(st.one_of(st.emails(), NEARLY, st.text(max_size=20)), max_size=30),
    ),
    st.booleans(),
)
@example(["a@example.com", "b@example.com"], False)
@example(["a@example.com", "a\nb@example.com"], False)
def test_batches_normalise_like_single_addresses(texts, sensitive):
    def one(text):
        try:
            return normalize(text, case_sensitive_local_part=sensitive)
        except InvalidAddress as exc:
            return exc.reason

    batch = normalize_many(texts, case_sensitive_local_part=sensitive)
    assert [r.reason if isinstance(r, InvalidAddress) else r for r in batch] == list(
        map(one, texts)
    )
