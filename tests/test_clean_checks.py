"""The pure checks of `bounced clean`: typos, roles, disposable domains, verdicts, and
the rules file's validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounced.clean import CleanOptions, Mode, Status, clean
from bounced.clean.checks import (
    CleanReason,
    DisposableDomains,
    Finding,
    Typos,
    is_role,
    suppression_finding,
    verdict,
)
from bounced.clean.rules import load_clean_rules, parse_clean_rules
from bounced.errors import RulesError

NO_DNS = CleanOptions(dns=False)
RULES = load_clean_rules()


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        ("gmial.com", "gmail.com"),  # two letters swapped
        ("hotmial.com", "hotmail.com"),
        ("yahoo.con", "yahoo.com"),  # one changed
        ("gmai.com", "gmail.com"),  # one missing
        ("outlookk.com", "outlook.com"),  # one added
        ("gmail.com", None),  # a common domain itself
        ("mail.com", None),  # common too, though one edit from gmail.com
        ("example.org", None),
        ("gmaaaail.com", None),  # too far
    ],
)
def test_typos_suggest_the_common_domain(domain, suggestion):
    assert Typos(RULES).suggestion(domain) == suggestion


def test_a_typo_is_risky_with_the_fix_in_the_detail_and_the_address_unchanged():
    (row,) = clean(["Ann@Gmial.com"], options=NO_DNS)
    assert (row.address, row.normalized, row.status, row.reason) == (
        "Ann@Gmial.com",
        "ann@gmial.com",
        Status.RISKY,
        "likely_typo",
    )
    assert "did you mean ann@gmail.com?" in row.detail


@given(st.text(alphabet="abcdefghij.", min_size=1, max_size=12))
def test_a_suggestion_is_never_the_domain_itself(domain):
    assert Typos(RULES).suggestion(domain) != domain


@pytest.mark.parametrize(
    ("local", "role"),
    [("info", True), ("INFO", True), ("noreply", True), ("info+shop", True), ("ann", False)],
)
def test_role_local_parts(local, role):
    assert is_role(local, RULES.role_local_parts) is role


def test_disposable_matches_the_domain_and_its_parents_above_the_public_suffix():
    listed = DisposableDomains(["mailinator.com", "co.uk", "trash.example.co.uk"])
    assert listed.match("mailinator.com") == "mailinator.com"
    assert listed.match("x.y.mailinator.com") == "mailinator.com"
    assert listed.match("a.trash.example.co.uk") == "trash.example.co.uk"
    assert listed.match("example.co.uk") is None  # co.uk is a public suffix, never matched
    assert listed.match("mailinator.org") is None


def test_the_shipped_disposable_list_is_used():
    (row,) = clean(["someone@mailinator.com"], options=NO_DNS)
    assert (row.status, row.reason) == (Status.RISKY, "disposable_domain")


@pytest.mark.parametrize(
    ("option", "address", "reason"),
    [
        ("roles", "admin@example.org", "role_account"),
        ("disposable", "x@mailinator.com", "disposable_domain"),
    ],
)
def test_roles_and_disposable_are_risky_rejected_or_off_as_asked(option, address, reason):
    for mode, status in ((Mode.RISKY, Status.RISKY), (Mode.REJECT, Status.REJECT)):
        options = CleanOptions(dns=False, **{option: mode})
        (row,) = clean([address], options=options)
        assert (row.status, row.reason) == (status, reason)
    (row,) = clean([address], options=CleanOptions(dns=False, **{option: Mode.OFF}))
    assert row.status is Status.OK


def test_invalid_addresses_are_rejected_with_email_validators_reason():
    rows = list(clean(["", "no-at-sign", "a@@b.com", "a@-bad-.com"], options=NO_DNS))
    assert [r.reason for r in rows] == ["invalid_address"] * 4
    assert [r.status for r in rows] == [Status.REJECT] * 4
    assert rows[0].detail == "empty"
    assert "@" in rows[1].detail


def test_an_idn_domain_is_normalised_to_its_ascii_form():
    (row,) = clean(["Jürgen@Bücher.example"], options=NO_DNS)
    assert row.status is Status.OK
    assert row.normalized == "jürgen@xn--bcher-kva.example"
    assert row.address == "Jürgen@Bücher.example"


def test_duplicates_after_normalisation_name_the_first_line():
    addresses = ["a@example.org", "<A@Example.ORG>", "b@example.org", "a@example.org"]
    rows = list(clean(addresses, options=NO_DNS))
    assert [(r.status, r.reason, r.detail) for r in rows] == [
        (Status.OK, "", ""),
        (Status.REJECT, "duplicate", "duplicate of line 1"),
        (Status.OK, "", ""),
        (Status.REJECT, "duplicate", "duplicate of line 1"),
    ]


def test_duplicates_can_be_kept():
    kept = clean(["a@example.org"] * 2, options=CleanOptions(dns=False, duplicates=False))
    assert [r.status for r in kept] == [Status.OK, Status.OK]


def test_rows_may_be_sequences_or_mappings():
    seq = list(clean([("Ann", "ann@example.org")], column=1, options=NO_DNS))
    assert seq[0].normalized == "ann@example.org"
    mapped = list(clean([{"email": "bad"}], column="email", options=NO_DNS))
    assert mapped[0].reason == "invalid_address"


def test_the_worst_finding_decides_and_every_detail_is_kept():
    risky = Finding(Status.RISKY, CleanReason.ROLE_ACCOUNT, "role account")
    reject = Finding(Status.REJECT, CleanReason.NULL_MX, "null MX")
    unknown = Finding(Status.UNKNOWN, CleanReason.DNS_TIMEOUT, "dns timeout")
    assert verdict([risky, reject]) == (Status.REJECT, "null_mx", "role account; null MX")
    assert verdict([risky, unknown])[:2] == (Status.UNKNOWN, "dns_timeout")
    assert verdict([]) == (Status.OK, "", "")


@pytest.mark.parametrize(
    ("state", "reason", "soft", "expected"),
    [
        ("former_employee", "former_employee", False, (Status.REJECT, "former_employee")),
        ("blocked", "complaint", False, (Status.REJECT, "complaint")),
        ("blocked", "hard", False, (Status.REJECT, "blocked")),
        ("active", "", True, (Status.RISKY, "soft_returns")),
        ("active", "", False, None),
        ("", "", False, None),
    ],
)
def test_what_the_store_says(state, reason, soft, expected):
    found = suppression_finding(state, reason, soft)
    assert (None if found is None else (found.status, found.reason)) == expected


def test_the_rules_file_refuses_unknown_keys_and_wrong_types():
    good = {
        "common_domains": ["gmail.com"],
        "max_typo_distance": 1,
        "role_local_parts": ["info"],
        "address_headers": ["email"],
    }
    assert parse_clean_rules(good).common_domains == frozenset({"gmail.com"})
    with pytest.raises(RulesError, match="unknown key"):
        parse_clean_rules(good | {"comon_domains": []})
    with pytest.raises(RulesError, match="missing"):
        parse_clean_rules({k: v for k, v in good.items() if k != "role_local_parts"})
    with pytest.raises(RulesError, match="list of non-empty strings"):
        parse_clean_rules(good | {"role_local_parts": "info"})
    with pytest.raises(RulesError, match="max_typo_distance"):
        parse_clean_rules(good | {"max_typo_distance": 5})


def test_bounced_clean_is_the_api_whichever_was_imported_first():
    import subprocess
    import sys

    script = (
        "import bounced\n"
        "from bounced.clean import CleanOptions\n"
        "rows = bounced.clean(['A@gmial.com'], options=CleanOptions(dns=False))\n"
        "print(next(rows).reason)\n"
    )
    for first in ("", "import bounced.clean.reading\n"):
        done = subprocess.run(
            [sys.executable, "-c", first + script], capture_output=True, text=True, timeout=60
        )
        assert done.stdout.strip() == "likely_typo", done.stderr
