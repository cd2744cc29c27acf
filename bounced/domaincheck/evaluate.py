"""The report on a sending domain, as pure functions of its fetched records: DKIM,
DMARC, MX (of the domain and of its return path), reverse DNS of the sending IPs,
and CNAME delegations. SPF is bounced.domaincheck.spf.

Every line says, in plain words, what was found and what to do about it; a DNS
timeout is a warning (could not be checked), never a pass or a fail.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from bounced.clean.dns import NXDOMAIN, Answer
from bounced.domaincheck.keys import parse_key_record, tags
from bounced.domaincheck.records import Line, Outcome, Records, reverse_name, unchecked
from bounced.domaincheck.spf import check_spf

__all__ = [
    "Request",
    "check_cname",
    "check_dkim",
    "check_dmarc",
    "check_fcrdns",
    "check_mx",
    "check_return_path",
    "dkim_name",
    "dmarc_names",
    "evaluate",
    "organizational_domain",
]

_PSL = PublicSuffixList()
_RSA_FAIL = 1024
_RSA_WARN = 2048


@dataclass(frozen=True, slots=True)
class Request:
    """What to check: the domain, its DKIM selectors, the IPs that send for it, the
    return-path (bounce) domain, the SPF includes its providers ask for, and the
    listener's domains and address, if any."""

    domain: str
    selectors: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    return_path: str = ""
    spf_includes: tuple[str, ...] = ()
    listener_domains: tuple[str, ...] = ()
    listener_host: str = ""


def organizational_domain(domain: str) -> str:
    """The registrable domain (`mail.example.co.uk` -> `example.co.uk`)."""
    return _PSL.privatesuffix(domain) or domain


def dkim_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dmarc_names(domain: str) -> tuple[str, ...]:
    """Where DMARC policy is looked for: the domain, then its organisational domain."""
    org = organizational_domain(domain)
    return (f"_dmarc.{domain}",) if org == domain else (f"_dmarc.{domain}", f"_dmarc.{org}")


def evaluate(request: Request, records: Records) -> list[Line]:
    """Every line of the report, in reading order."""
    d = request.domain
    lines = check_spf(records, d, request.ips, request.spf_includes)
    if request.return_path and request.return_path != d:
        lines += check_spf(records, request.return_path, request.ips, request.spf_includes)
    for selector in request.selectors:
        lines += check_cname(records, dkim_name(selector, d), "TXT")
        lines.append(check_dkim(records, selector, d))
    if not request.selectors:
        lines.append(
            Line(
                "dkim",
                Outcome.WARN,
                d,
                "no DKIM selector given, so no key was checked",
                "pass --dkim-selector with the selector your provider signs with "
                "(the s= tag of a DKIM-Signature header in a message you sent)",
            )
        )
    lines += check_dmarc(records, d, request.return_path)
    lines.append(check_mx(records, d))
    if request.return_path:
        lines += check_cname(records, request.return_path, "MX")
        lines += check_return_path(records, request)
    lines += [check_fcrdns(records, ip) for ip in request.ips]
    return lines


def _get(records: Records, name: str, rdtype: str) -> Answer:
    return records.get((name, rdtype)) or Answer(error="timeout")


def check_dkim(records: Records, selector: str, domain: str) -> Line:
    name = dkim_name(selector, domain)
    answer = _get(records, name, "TXT")
    if answer.error and answer.error != NXDOMAIN:
        return unchecked("dkim", name, answer.error)
    keys = [r for r in answer.records if "p=" in r]
    if not keys:
        return Line(
            "dkim",
            Outcome.FAIL,
            name,
            f"no DKIM key for selector {selector!r}",
            f"publish the TXT (or CNAME) record your provider gives for {name}",
        )
    key = parse_key_record(keys[0])
    if key.revoked:
        return Line(
            "dkim",
            Outcome.FAIL,
            name,
            "the key is revoked (empty p=)",
            "publish the current key, or stop signing with this selector",
        )
    if key.problem:
        return Line(
            "dkim",
            Outcome.FAIL,
            name,
            f"the key does not parse: {key.problem}",
            "copy the record again from your provider, whole (long keys are split in quotes)",
        )
    if key.key_type == "rsa" and key.bits < _RSA_WARN:
        weak = key.bits < _RSA_FAIL
        why = f"receivers ignore keys under {_RSA_FAIL}" if weak else f"{_RSA_WARN} is the norm"
        return Line(
            "dkim",
            Outcome.FAIL if weak else Outcome.WARN,
            name,
            f"RSA key of {key.bits} bits: {why}",
            "create a 2048-bit key, publish it under a new selector, then switch signing",
        )
    return Line("dkim", Outcome.PASS, name, f"{key.key_type} key of {key.bits} bits")


def check_dmarc(records: Records, domain: str, return_path: str = "") -> list[Line]:
    names = dmarc_names(domain)
    for i, name in enumerate(names):
        answer = _get(records, name, "TXT")
        if answer.error and answer.error != NXDOMAIN:
            return [unchecked("dmarc", name, answer.error)]
        found = [r for r in answer.records if r.replace(" ", "").lower().startswith("v=dmarc1")]
        if len(found) > 1:
            return [
                Line(
                    "dmarc",
                    Outcome.FAIL,
                    name,
                    f"{len(found)} DMARC records: receivers then apply none",
                    "keep one TXT record starting v=DMARC1",
                )
            ]
        if found:
            return _dmarc_lines(name, tags(found[0]), domain, return_path, inherited=i > 0)
    return [
        Line(
            "dmarc",
            Outcome.FAIL,
            names[0],
            "no DMARC record: receivers such as Gmail and Yahoo require one from bulk senders",
            f'publish a TXT record at _dmarc.{domain}: "v=DMARC1; p=none; '
            f'rua=mailto:dmarc@{domain}", then move to p=quarantine or p=reject',
        )
    ]


def _dmarc_lines(
    name: str, found: dict[str, str], domain: str, return_path: str, *, inherited: bool
) -> list[Line]:
    policy = found.get("sp" if inherited and "sp" in found else "p", "").lower()
    where = f" (from {name}, the organisational domain)" if inherited else ""
    if policy not in ("none", "quarantine", "reject"):
        return [
            Line(
                "dmarc",
                Outcome.FAIL,
                name,
                f"the policy p={policy or '(missing)'} is not none, quarantine or reject{where}",
                "write p=none, p=quarantine or p=reject right after v=DMARC1",
            )
        ]
    lines = []
    if policy == "none":
        lines.append(
            Line(
                "dmarc",
                Outcome.WARN,
                name,
                f"policy none{where}: reports only, forged mail is still delivered",
                "once the reports show your mail passes, change p=none to p=quarantine",
            )
        )
    else:
        lines.append(Line("dmarc", Outcome.PASS, name, f"policy {policy}{where}"))
    if "rua" not in found:
        lines.append(
            Line(
                "dmarc",
                Outcome.WARN,
                name,
                "no rua=: nobody receives the aggregate reports",
                f"add rua=mailto:dmarc-reports@{domain} (a mailbox or a report service)",
            )
        )
    sub = found.get("sp", "").lower()
    if not inherited and policy != "none" and sub == "none":
        lines.append(
            Line(
                "dmarc",
                Outcome.WARN,
                name,
                "sp=none: subdomains can be forged although the domain is protected",
                "remove sp=none (subdomains then follow p=) or set sp=quarantine",
            )
        )
    pct = found.get("pct", "100")
    if pct != "100":
        lines.append(
            Line(
                "dmarc",
                Outcome.WARN,
                name,
                f"pct={pct}: the policy applies to only part of the mail",
                "raise pct to 100 (or remove it)",
            )
        )
    lines.append(_alignment(name, found, domain, return_path))
    return lines


def _alignment(name: str, found: dict[str, str], domain: str, return_path: str) -> Line:
    spf_mode = "strict" if found.get("aspf", "r").lower() == "s" else "relaxed"
    dkim_mode = "strict" if found.get("adkim", "r").lower() == "s" else "relaxed"
    modes = f"alignment: SPF {spf_mode}, DKIM {dkim_mode}"
    if not return_path:
        return Line("dmarc", Outcome.PASS, name, modes)
    aligned = (
        return_path == domain
        if spf_mode == "strict"
        else organizational_domain(return_path) == organizational_domain(domain)
    )
    if aligned:
        return Line("dmarc", Outcome.PASS, name, f"{modes}; the return path {return_path} aligns")
    return Line(
        "dmarc",
        Outcome.WARN,
        name,
        f"{modes}; the return path {return_path} does not align with {domain}, "
        "so DMARC passes only through DKIM",
        f"use a return-path domain under {organizational_domain(domain)} "
        "(your provider calls it a custom bounce or MAIL FROM domain)",
    )


def _mail_hosts(records: Records, domain: str) -> tuple[str, list[str]]:
    """(kind, hosts): kind mx, null, address, none, nxdomain, or a DNS error."""
    mx = _get(records, domain, "MX")
    if mx.error:
        return mx.error, []
    if mx.records:
        hosts = [r.split()[-1].rstrip(".") for r in sorted(mx.records)]
        return ("null", []) if hosts == [""] else ("mx", hosts)
    for rdtype in ("A", "AAAA"):
        if _get(records, domain, rdtype).records:
            return "address", [domain]
    return "none", []


def check_mx(records: Records, domain: str) -> Line:
    kind, hosts = _mail_hosts(records, domain)
    if kind == "mx":
        return Line("mx", Outcome.PASS, domain, "mail for the domain goes to " + ", ".join(hosts))
    if kind == "null":
        return Line(
            "mx",
            Outcome.WARN,
            domain,
            "null MX: the domain says it receives no mail, so replies to your mail bounce "
            "and some receivers refuse mail from it",
            "publish a real MX if people should be able to reply",
        )
    if kind == "address":
        return Line(
            "mx",
            Outcome.WARN,
            domain,
            "no MX: mail for the domain goes to its A/AAAA host",
            "publish an MX record for the server that receives the domain's mail",
        )
    if kind == "nxdomain":
        return Line(
            "mx",
            Outcome.FAIL,
            domain,
            "the domain does not exist in DNS",
            "register the domain or check its spelling",
        )
    if kind == "none":
        return Line(
            "mx",
            Outcome.WARN,
            domain,
            "no MX and no address: replies to your mail cannot be delivered",
            "publish an MX record for the server that receives the domain's mail",
        )
    return unchecked("mx", domain, kind)


def check_return_path(records: Records, request: Request) -> list[Line]:
    """The bounce domain must take mail (bounces come back there), and when a bounced
    listener is configured, be one of its domains and point at it."""
    rp = request.return_path
    kind, hosts = _mail_hosts(records, rp)
    if kind not in ("mx", "address", "null", "nxdomain", "none"):
        return [unchecked("return_path", rp, kind)]
    if kind != "mx":
        why = {
            "null": "has a null MX: bounces to it are refused, so you never learn of them",
            "nxdomain": "does not exist: bounces to it cannot be delivered",
            "none": "has no MX: bounces to it cannot be delivered",
            "address": "has no MX, only an address: bounces go to that host",
        }[kind]
        outcome = Outcome.WARN if kind == "address" else Outcome.FAIL
        return [
            Line(
                "return_path",
                outcome,
                rp,
                f"the return-path domain {why}",
                f"publish an MX for {rp} pointing at the server that receives bounces "
                "(the bounced listener)",
            )
        ]
    lines = [Line("return_path", Outcome.PASS, rp, "bounces go to " + ", ".join(hosts))]
    if request.listener_domains:
        lines.append(_listener_line(records, request, hosts))
    return lines


def _listener_line(records: Records, request: Request, hosts: list[str]) -> Line:
    rp = request.return_path
    accepted = {d.rpartition("@")[2].lower() for d in request.listener_domains}
    if rp not in accepted:
        return Line(
            "return_path",
            Outcome.WARN,
            rp,
            f"not one of the listener's domains ({', '.join(sorted(accepted))}): "
            "bounced refuses bounces sent there",
            f'add "{rp}" to [listener] domains, or use one of those as the return path',
        )
    listener = _public_address(request.listener_host)
    if listener is None:
        return Line("return_path", Outcome.PASS, rp, "a domain the bounced listener accepts")
    addresses = {
        value
        for host in hosts
        for rdtype in ("A", "AAAA")
        for value in _get(records, host, rdtype).records
    }
    if listener in addresses:
        return Line("return_path", Outcome.PASS, rp, f"MX points at the listener ({listener})")
    return Line(
        "return_path",
        Outcome.FAIL,
        rp,
        f"MX hosts resolve to {', '.join(sorted(addresses)) or 'nothing'}, "
        f"not the listener's address {listener}",
        f"point the MX of {rp} at a name whose A/AAAA record is {listener}",
    )


def _public_address(host: str) -> str | None:
    """The listener's address when it is one the world can reach (not 0.0.0.0, ::1)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_unspecified or address.is_loopback:
        return None
    return str(address)


def check_fcrdns(records: Records, ip: str) -> Line:
    """The sending IP's PTR name must resolve back to the IP (forward-confirmed)."""
    name = reverse_name(ip)
    ptr = _get(records, name, "PTR")
    if ptr.error and ptr.error != NXDOMAIN:
        return unchecked("fcrdns", ip, ptr.error)
    if not ptr.records:
        return Line(
            "fcrdns",
            Outcome.FAIL,
            ip,
            "no reverse DNS (PTR): many receivers refuse mail from such an IP",
            "ask whoever owns the IP (your hosting provider) to set its PTR to a name "
            "that resolves back to it",
        )
    names = [r.rstrip(".") for r in ptr.records]
    rdtype = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
    for host in names:
        if ip in _get(records, host, rdtype).records:
            return Line("fcrdns", Outcome.PASS, ip, f"PTR {host} resolves back to {ip}")
    return Line(
        "fcrdns",
        Outcome.FAIL,
        ip,
        f"PTR {', '.join(names)} does not resolve back to {ip}",
        f"add an {rdtype} record {names[0]} -> {ip}, or change the PTR to a name that has one",
    )


def check_cname(records: Records, name: str, rdtype: str) -> list[Line]:
    """A name delegated to a provider by CNAME must lead somewhere that exists."""
    cname = records.get((name, "CNAME"))
    if cname is None or not cname.records:
        return []
    target = cname.records[0].rstrip(".")
    answer = _get(records, name, rdtype)
    if answer.error == NXDOMAIN:
        return [
            Line(
                "cname",
                Outcome.FAIL,
                name,
                f"CNAME to {target}, which does not exist (a broken delegation)",
                "copy the CNAME target again from your provider, or finish the setup there",
            )
        ]
    if answer.error:
        return [unchecked("cname", name, answer.error)]
    return [Line("cname", Outcome.PASS, name, f"delegated by CNAME to {target}")]
