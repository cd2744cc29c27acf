"""`clean` against a DNS server started by the test on loopback: every DNS outcome,
one query per distinct domain, and timeouts that are `unknown`, never rejects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers.dns_server import DnsServer

from bounced.clean import CleanOptions, Mode, Status, clean
from bounced.clean.dns import MailDomains, nameserver_address
from bounced.config import DnsSettings, Settings

ZONE = {
    "mx.example": {"MX": ["10 mx1.mx.example.", "20 mx2.mx.example."]},
    "mx1.mx.example": {"A": ["192.0.2.1"]},
    "address.example": {"A": ["192.0.2.2"]},
    "v6.example": {"AAAA": ["2001:db8::2"]},
    "nullmx.example": {"MX": ["0 ."]},
    "nomail.example": {"TXT": ["v=spf1 -all"]},
    "alias.example": {"CNAME": ["mx.example."]},
}
SERVFAIL = {"broken.example"}
SILENT = {"slow.example"}


@pytest.fixture
def server():
    with DnsServer(ZONE, servfail=SERVFAIL, silent=SILENT) as server:
        yield server


def settings_for(server: DnsServer, **dns) -> Settings:
    timeout = dns.pop("timeout", timedelta(milliseconds=500))
    return Settings(dns=DnsSettings(nameservers=(server.address,), timeout=timeout, **dns))


OPTIONS = CleanOptions(roles=Mode.OFF, disposable=Mode.OFF, typos=False)


def verdicts(server, addresses, **kw):
    rows = clean(addresses, options=OPTIONS, settings=settings_for(server), **kw)
    return [(r.status.value, r.reason) for r in rows]


@pytest.mark.parametrize(
    ("address", "status", "reason"),
    [
        ("a@mx.example", "ok", ""),
        ("a@address.example", "ok", ""),  # no MX: the A record takes mail
        ("a@v6.example", "ok", ""),  # ... or the AAAA record
        ("a@alias.example", "ok", ""),  # a CNAME to a domain with MX
        ("a@nullmx.example", "reject", "null_mx"),
        ("a@nowhere.example", "reject", "no_such_domain"),
        ("a@nomail.example", "reject", "no_mail_server"),
        ("a@broken.example", "unknown", "dns_timeout"),  # SERVFAIL
        ("a@slow.example", "unknown", "dns_timeout"),  # no answer at all
    ],
)
def test_every_dns_outcome(server, address, status, reason):
    assert verdicts(server, [address]) == [(status, reason)]


def test_the_detail_says_what_dns_said(server):
    rows = clean(
        ["a@broken.example", "a@slow.example", "a@nullmx.example"],
        options=OPTIONS,
        settings=settings_for(server),
    )
    assert [r.detail for r in rows] == [
        "dns timeout (SERVFAIL)",
        "dns timeout",
        "domain accepts no mail (null MX)",
    ]


def test_one_query_per_distinct_domain_however_many_rows(server):
    addresses = [f"user{i}@{d}" for i in range(3000) for d in ("mx.example", "nowhere.example")]
    results = verdicts(server, addresses)
    assert results.count(("ok", "")) == 3000
    assert results.count(("reject", "no_such_domain")) == 3000
    assert server.queries[("mx.example", "MX")] == 1
    assert server.queries[("nowhere.example", "MX")] == 1


def test_rejected_rows_are_not_looked_up(server):
    assert verdicts(server, ["bad@@x.example", "a@mx.example", "A@MX.example"]) == [
        ("reject", "invalid_address"),
        ("ok", ""),
        ("reject", "duplicate"),
    ]
    assert server.asked() == 1


def test_answers_can_be_shared_across_runs(server):
    with MailDomains(settings_for(server).dns) as domains:
        for _ in range(3):
            assert verdicts(server, ["a@mx.example"], domains=domains) == [("ok", "")]
    assert server.queries[("mx.example", "MX")] == 1


def test_many_silent_domains_are_all_unknown_and_all_asked(server):
    slow = {f"slow{i}.example" for i in range(20)}
    with DnsServer(ZONE, silent=slow) as quiet:
        settings = settings_for(quiet, concurrency=20)
        rows = list(clean([f"a@{d}" for d in sorted(slow)], options=OPTIONS, settings=settings))
    assert {(r.status, r.reason) for r in rows} == {(Status.UNKNOWN, "dns_timeout")}
    assert all(quiet.queries[(d, "MX")] >= 1 for d in slow)


def test_a_reader_that_stops_early_leaves_the_rest_of_the_list_unasked(server):
    # Every name here is answered at once (NXDOMAIN): a long timeout, so that a loaded
    # machine answering the first fifty queries late cannot make the first row a timeout.
    settings = settings_for(server, timeout=timedelta(seconds=10))
    domains = MailDomains(settings.dns)
    rows = clean([f"a{i}@d{i}.example" for i in range(30000)], options=OPTIONS,
                 settings=settings, domains=domains)  # fmt: skip
    first = next(rows)
    assert first.reason == "no_such_domain"
    rows.close()
    domains.close()
    asked = server.asked("MX")
    assert 0 < asked < 30000  # only the chunks prepared ahead were looked up


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameserver_addresses(text, address):
    assert nameserver_address(text) == address
