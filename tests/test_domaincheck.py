"""`bounced domain check` against a DNS server started by the test: every outcome of
SPF, DKIM, DMARC, MX, the return path, FCrDNS and CNAME delegations."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from helpers.dns_server import DnsServer

from bounced.config import DnsSettings
from bounced.domaincheck import Outcome, Request, check_domain

D = "example.com"
GOOD_DMARC = {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"]}


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def rsa_key(bits: int, *, spki: bool = True) -> str:
    """A DKIM p= value: an RSA public key of `bits` (its modulus only needs the length)."""
    modulus = ((1 << (bits - 1)) | 1).to_bytes(bits // 8, "big")
    pkcs1 = _der(0x30, _der(0x02, b"\0" + modulus) + _der(0x02, b"\x01\x00\x01"))
    if not spki:
        return base64.b64encode(pkcs1).decode()
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))
    return base64.b64encode(_der(0x30, algorithm + _der(0x03, b"\0" + pkcs1))).decode()


def report(zone, *, servfail=(), silent=(), **request):
    with DnsServer(zone, servfail=set(servfail), silent=set(silent)) as server:
        settings = DnsSettings(nameservers=(server.address,), timeout=timedelta(seconds=0.5))
        return check_domain(Request(request.pop("domain", D), **request), settings)


def lines(result, check):
    return [(line.outcome.value, line.message) for line in result.lines if line.check == check]


def outcomes(result, check):
    return [o for o, _ in lines(result, check)]


def spf_zone(record, **more):
    return {D: {"TXT": [record]}, **more}


# --- SPF ------------------------------------------------------------------------------


def test_spf_missing_and_doubled_records_fail():
    assert outcomes(report({D: {"TXT": ["google-site-verification=x"]}}), "spf") == ["fail"]
    doubled = report({D: {"TXT": ["v=spf1 -all", "v=spf1 ip4:192.0.2.1 -all"]}})
    assert lines(doubled, "spf") == [
        ("fail", "2 SPF records: receivers treat more than one as an error")
    ]


@pytest.mark.parametrize(
    "record", ["v=spf1 ip4:999.0.0.1 -all", "v=spf1 include -all", "v=spf1 foo:bar -all",
               "v=spf1 ip6:192.0.2.1 -all", "v=spf1 all:x"]
)  # fmt: skip
def test_spf_syntax_errors_fail(record):
    ((outcome, message),) = lines(report(spf_zone(record)), "spf")
    assert outcome == "fail" and message.startswith("SPF record does not parse")


def test_spf_lookups_are_counted_through_includes_and_redirects():
    zone = {
        D: {"TXT": ["v=spf1 include:a.example.net include:b.example.net mx a -all"]},
        "a.example.net": {"TXT": ["v=spf1 include:c.example.net -all"]},
        "b.example.net": {"TXT": ["v=spf1 redirect=c.example.net"]},
        "c.example.net": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    }
    assert ("pass", "6 of 10 DNS lookups") in lines(report(zone), "spf")


def test_spf_over_ten_lookups_fails():
    chain = {f"i{i}.example.net": {"TXT": [f"v=spf1 include:i{i + 1}.example.net -all"]}
             for i in range(11)}  # fmt: skip
    chain["i11.example.net"] = {"TXT": ["v=spf1 -all"]}
    result = report({D: {"TXT": ["v=spf1 include:i0.example.net -all"]}, **chain})
    failing = [m for o, m in lines(result, "spf") if o == "fail"]
    assert failing == [
        "12 DNS lookups through includes and redirects; the limit is 10, past it receivers fail SPF"
    ]


def test_spf_include_loops_fail():
    zone = {
        D: {"TXT": ["v=spf1 include:a.example.net -all"]},
        "a.example.net": {"TXT": ["v=spf1 include:b.example.net -all"]},
        "b.example.net": {"TXT": ["v=spf1 include:a.example.net -all"]},
    }
    assert (
        "fail",
        "include loop: example.com -> a.example.net -> b.example.net -> a.example.net",
    ) in lines(report(zone), "spf")


def test_an_include_without_spf_fails():
    zone = {D: {"TXT": ["v=spf1 include:none.example.net -all"]}}
    assert (
        "fail",
        "an included record is unusable: none.example.net has no SPF record(s)",
    ) in lines(report(zone), "spf")


@pytest.mark.parametrize(
    ("ending", "warned"),
    [("+all", True), ("?all", True), ("all", True), ("~all", False), ("-all", False)],
)
def test_permissive_all_is_warned(ending, warned):
    result = report(spf_zone(f"v=spf1 ip4:192.0.2.1 {ending}"))
    assert ("warn" in outcomes(result, "spf")) is warned


def test_no_all_and_ptr_are_warned():
    result = report(spf_zone("v=spf1 ptr ip4:192.0.2.1"))
    assert outcomes(result, "spf") == ["pass", "pass", "warn", "warn"]


def test_sending_ips_authorised_by_ip4_include_a_and_mx():
    zone = {
        D: {"TXT": ["v=spf1 ip4:192.0.2.0/28 include:esp.example.net a:out.example.com mx -all"]},
        "esp.example.net": {"TXT": ["v=spf1 ip6:2001:db8::/32 -all"]},
        "out.example.com": {"A": ["203.0.113.7"]},
    }
    zone[D]["MX"] = ["10 mx.example.com."]
    zone["mx.example.com"] = {"A": ["198.51.100.25"]}
    ips = ("192.0.2.3", "2001:db8::1", "203.0.113.7", "198.51.100.25", "198.51.100.26")
    result = report(zone, ips=ips)
    ip_lines = [(line.subject, line.outcome.value) for line in result.lines
                if line.check == "spf" and line.subject in ips]  # fmt: skip
    assert ip_lines == [
        ("192.0.2.3", "pass"),
        ("2001:db8::1", "pass"),
        ("203.0.113.7", "pass"),
        ("198.51.100.25", "pass"),
        ("198.51.100.26", "fail"),
    ]


def test_an_ip_matched_by_a_fail_term_is_not_authorised():
    result = report(spf_zone("v=spf1 -ip4:192.0.2.1 +all"), ips=("192.0.2.1",))
    assert (
        "fail",
        "192.0.2.1 is not authorised by example.com's SPF (result: fail)",
    ) in lines(result, "spf")


def test_spf_that_dns_cannot_answer_is_a_warning():
    assert lines(report({}, servfail={D}), "spf") == [
        ("warn", "could not be checked (DNS servfail)")
    ]
    assert lines(report({}, silent={D}), "spf") == [("warn", "could not be checked (DNS timeout)")]


# --- DKIM -----------------------------------------------------------------------------


def dkim(value: str, selector: str = "s1") -> dict:
    return {f"{selector}._domainkey.{D}": {"TXT": [value]}}


@pytest.mark.parametrize(
    ("record", "outcome", "words"),
    [
        (f"v=DKIM1; k=rsa; p={rsa_key(2048)}", "pass", "rsa key of 2048 bits"),
        (f"v=DKIM1; p={rsa_key(4096, spki=False)}", "pass", "rsa key of 4096 bits"),
        (f"v=DKIM1; k=rsa; p={rsa_key(1024)}", "warn", "RSA key of 1024 bits"),
        (f"v=DKIM1; k=rsa; p={rsa_key(512)}", "fail", "RSA key of 512 bits"),
        (f"v=DKIM1; k=ed25519; p={base64.b64encode(bytes(32)).decode()}", "pass", "ed25519"),
        ("v=DKIM1; k=rsa; p=", "fail", "revoked"),
        ("v=DKIM1; k=rsa; p=***", "fail", "not base64"),
        ("v=DKIM1; k=rsa; p=AAAA", "fail", "not an RSA public key"),
        ("v=DKIM1; k=dsa; p=AAAA", "fail", "unknown key type"),
    ],
)
def test_dkim_keys(record, outcome, words):
    result = report(dkim(record), selectors=("s1",))
    ((got, message),) = lines(result, "dkim")
    assert got == outcome and words in message, message


def test_a_missing_dkim_key_fails_and_no_selector_warns():
    assert outcomes(report({}, selectors=("s1",)), "dkim") == ["fail"]
    assert outcomes(report({}), "dkim") == ["warn"]


def test_dkim_cname_delegations():
    zone = {
        f"s1._domainkey.{D}": {"CNAME": ["s1.dkim.esp.example.net."]},
        "s1.dkim.esp.example.net": {"TXT": [f"v=DKIM1; p={rsa_key(2048)}"]},
        f"s2._domainkey.{D}": {"CNAME": ["s2.dkim.esp.example.net."]},
    }
    result = report(zone, selectors=("s1", "s2"))
    assert lines(result, "cname") == [
        ("pass", "delegated by CNAME to s1.dkim.esp.example.net"),
        ("fail", "CNAME to s2.dkim.esp.example.net, which does not exist (a broken delegation)"),
    ]
    assert outcomes(result, "dkim") == ["pass", "fail"]


# --- DMARC ----------------------------------------------------------------------------


def dmarc(*records: str, name: str = f"_dmarc.{D}") -> dict:
    return {name: {"TXT": list(records)}}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ((), [("fail", "no DMARC record")]),
        (("v=DMARC1; p=reject", "v=DMARC1; p=none"), [("fail", "2 DMARC records")]),
        (("v=DMARC1; p=maybe",), [("fail", "the policy p=maybe is not none")]),
        (("v=DMARC1; p=none; rua=mailto:d@example.com",), [("warn", "policy none")]),
        (("v=DMARC1; p=quarantine; rua=mailto:d@example.com",), [("pass", "policy quarantine")]),
        (("v=DMARC1; p=reject",), [("pass", "policy reject"), ("warn", "no rua=")]),
        (
            ("v=DMARC1; p=reject; rua=mailto:d@example.com; sp=none",),
            [("pass", "policy reject"), ("warn", "sp=none")],
        ),
        (
            ("v=DMARC1; p=reject; rua=mailto:d@example.com; pct=50",),
            [("pass", "policy reject"), ("warn", "pct=50")],
        ),
    ],
)
def test_dmarc(records, expected):
    found = lines(report(dmarc(*records) if records else {}), "dmarc")
    found = [(o, m) for o, m in found if not m.startswith("alignment")]
    assert [(o, m[: len(w)]) for (o, m), (_, w) in zip(found, expected, strict=True)] == expected


def test_dmarc_is_inherited_from_the_organisational_domain_with_its_sp():
    zone = dmarc("v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com")
    result = report(zone, domain="news.example.com")
    assert lines(result, "dmarc")[0] == (
        "pass",
        "policy quarantine (from _dmarc.example.com, the organisational domain)",
    )


@pytest.mark.parametrize(
    ("record", "return_path", "outcome"),
    [
        ("v=DMARC1; p=reject; rua=mailto:d@x.org", "bounces.example.com", "pass"),
        ("v=DMARC1; p=reject; rua=mailto:d@x.org; aspf=s", "bounces.example.com", "warn"),
        ("v=DMARC1; p=reject; rua=mailto:d@x.org", "bounces.esp.example.net", "warn"),
    ],
)
def test_dmarc_alignment_of_the_return_path(record, return_path, outcome):
    zone = dmarc(record) | {return_path: {"MX": ["10 mx.example.net."]}}
    alignment = [
        o for o, m in lines(report(zone, return_path=return_path), "dmarc") if "alignment" in m
    ]
    assert alignment == [outcome]


# --- MX, return path, FCrDNS ----------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "outcome", "words"),
    [
        ({"MX": ["10 mx.example.com."]}, "pass", "goes to mx.example.com"),
        ({"MX": ["0 ."]}, "warn", "null MX"),
        ({"A": ["192.0.2.1"]}, "warn", "no MX: mail for the domain goes to its A/AAAA host"),
        ({"TXT": ["v=spf1 -all"]}, "warn", "no MX and no address"),
        (None, "fail", "does not exist"),
    ],
)
def test_mx_of_the_domain(records, outcome, words):
    ((got, message),) = lines(report({D: records} if records else {}), "mx")
    assert got == outcome and words in message


RP = "bounces.example.com"


@pytest.mark.parametrize(
    ("records", "outcome", "words"),
    [
        ({"MX": ["10 mx.example.com."]}, "pass", "bounces go to mx.example.com"),
        ({"MX": ["0 ."]}, "fail", "null MX"),
        ({"TXT": ["x"]}, "fail", "has no MX"),
        (None, "fail", "does not exist"),
    ],
)
def test_the_return_path_must_take_bounces(records, outcome, words):
    zone = {RP: records} if records else {}
    ((got, message),) = lines(report(zone, return_path=RP), "return_path")
    assert got == outcome and words in message


def test_the_return_path_and_the_bounced_listener():
    zone = {
        RP: {"MX": ["10 mx.example.com."]},
        "mx.example.com": {"A": ["192.0.2.25"]},
        "other.example.com": {"MX": ["10 mx.example.com."]},
    }
    at = {"return_path": RP, "listener_domains": (RP,)}
    assert lines(report(zone, **at), "return_path")[1] == (
        "pass",
        "a domain the bounced listener accepts",
    )
    here = lines(report(zone, **at, listener_host="192.0.2.25"), "return_path")[1]
    assert here == ("pass", "MX points at the listener (192.0.2.25)")
    elsewhere = lines(report(zone, **at, listener_host="192.0.2.99"), "return_path")[1]
    assert elsewhere[0] == "fail" and "not the listener's address 192.0.2.99" in elsewhere[1]
    other = report(zone, return_path="other.example.com", listener_domains=(RP,))
    assert lines(other, "return_path")[1][0] == "warn"


def test_a_return_path_delegated_by_cname():
    zone = {RP: {"CNAME": ["bounce.esp.example.net."]},
            "bounce.esp.example.net": {"MX": ["10 mx.esp.example.net."]}}  # fmt: skip
    result = report(zone, return_path=RP)
    assert lines(result, "cname") == [("pass", "delegated by CNAME to bounce.esp.example.net")]
    assert outcomes(result, "return_path") == ["pass"]


def test_fcrdns_of_sending_ips():
    zone = {
        "1.2.0.192.in-addr.arpa": {"PTR": ["out.example.com."]},
        "out.example.com": {"A": ["192.0.2.1"]},
        "2.2.0.192.in-addr.arpa": {"PTR": ["liar.example.com."]},
        "liar.example.com": {"A": ["192.0.2.200"]},
    }
    result = report(zone, ips=("192.0.2.1", "192.0.2.2", "192.0.2.3"))
    assert lines(result, "fcrdns") == [
        ("pass", "PTR out.example.com resolves back to 192.0.2.1"),
        ("fail", "PTR liar.example.com does not resolve back to 192.0.2.2"),
        ("fail", "no reverse DNS (PTR): many receivers refuse mail from such an IP"),
    ]


def test_every_line_that_is_not_a_pass_says_what_to_do():
    result = report({}, selectors=("s1",), ips=("192.0.2.9",), return_path=RP)
    assert result.failed
    assert all(line.fix for line in result.lines if line.outcome is not Outcome.PASS)


# --- the command ----------------------------------------------------------------------


def run(server, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env["BOUNCED_DNS_NAMESERVERS"] = server.address
    cmd = [sys.executable, "-m", "bounced", "domain", "check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


GOOD = {
    D: {"TXT": ["v=spf1 ip4:192.0.2.1 -all"], "MX": ["10 mx.example.com."]},
    f"_dmarc.{D}": GOOD_DMARC,
    f"s1._domainkey.{D}": {"TXT": [f"v=DKIM1; p={rsa_key(2048)}"]},
    "1.2.0.192.in-addr.arpa": {"PTR": ["mx.example.com."]},
    "mx.example.com": {"A": ["192.0.2.1"]},
}


def test_the_command_passes_a_good_domain_and_says_json():
    with DnsServer(GOOD) as server:
        result = run(server, D, "--dkim-selector", "s1", "--sending-ip", "192.0.2.1",
                     "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["counts"]["fail"] == 0
    assert {line["check"] for line in document["lines"]} == {"spf", "dkim", "dmarc", "mx", "fcrdns"}


def test_the_command_exits_1_when_something_fails():
    with DnsServer(GOOD) as server:
        result = run(server, D, "--dkim-selector", "missing")
    assert result.returncode == 1
    assert "fail" in result.stdout and "no DKIM key" in result.stdout


def test_the_command_refuses_bad_arguments():
    with DnsServer({}) as server:
        assert run(server, D, "--sending-ip", "not-an-ip").returncode == 2
        assert run(server, "nodots").returncode == 2


def test_the_includes_a_provider_asks_for():
    zone = {
        D: {"TXT": ["v=spf1 include:a.example.net -all"]},
        "a.example.net": {"TXT": ["v=spf1 include:spf.esp.example.net -all"]},
        "spf.esp.example.net": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    }
    result = report(zone, spf_includes=("spf.esp.example.net", "other.example.net"))
    found = [(line.subject, line.outcome.value) for line in result.lines if line.check == "spf"]
    assert ("spf.esp.example.net", "pass") in found  # included through another include
    assert ("other.example.net", "fail") in found
