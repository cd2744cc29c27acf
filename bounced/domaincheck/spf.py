"""SPF (RFC 7208) as a domain check reads it: the record of a domain, its terms, the
DNS lookups it costs through includes and redirects, and whether given IPs pass.

Everything here is pure over fetched Records; `needed` tells the fetcher which
names a record refers to, so the walk through includes is the same in both.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bounced.clean.dns import NXDOMAIN
from bounced.domaincheck.records import Line, Outcome, Records, unchecked

__all__ = ["LOOKUP_LIMIT", "Term", "check_spf", "matches", "needed", "parse", "spf_records"]

#: DNS-querying terms one SPF evaluation may use (RFC 7208 4.6.4).
LOOKUP_LIMIT = 10
_LOOKUPS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_TERM = re.compile(
    r"^(?P<q>[-+~?]?)(?P<name>[a-z][a-z0-9_.-]*)(?P<sep>[:=/]?)(?P<value>.*)$", re.IGNORECASE
)
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@dataclass(frozen=True, slots=True)
class Term:
    qualifier: str  # + - ~ ? ("" for modifiers)
    name: str  # mechanism or modifier name, lower-case
    value: str  # domain, network or modifier value ("" when none)
    cidr: str = ""  # a/mx dual-cidr suffix ("/24", "/24//64")
    modifier: bool = False


def spf_records(records: Records, domain: str) -> list[str]:
    answer = records.get((domain, "TXT"))
    texts = answer.records if answer else ()
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


def parse(record: str) -> tuple[list[Term], list[str]]:
    """The terms of an SPF record, and what is wrong with its syntax."""
    terms: list[Term] = []
    problems: list[str] = []
    for text in record.split()[1:]:
        m = _TERM.match(text)
        if m is None:
            problems.append(f"{text!r} is not an SPF term")
            continue
        name, sep, value = m["name"].lower(), m["sep"], m["value"]
        if sep == "=":
            terms.append(Term("", name, value, modifier=True))
            continue
        if name not in _MECHANISMS:
            problems.append(f"unknown mechanism {text!r}")
            continue
        cidr = ""
        if sep == "/":
            value, cidr = "", "/" + value
        elif name in ("a", "mx") and "/" in value:
            value, _, rest = value.partition("/")
            cidr = "/" + rest
        problem = _term_problem(name, value)
        if problem:
            problems.append(f"{text!r}: {problem}")
            continue
        terms.append(Term(m["q"] or "+", name, value, cidr))
    return terms, problems


def _term_problem(name: str, value: str) -> str:
    if name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an {name} network"
        if network.version != int(name[-1]):
            return f"{value!r} is not an {name} network"
    if name in ("include", "exists") and not value:
        return f"{name} needs a domain"
    if name == "all" and value:
        return "all takes no value"
    return ""


def _target(term: Term, domain: str) -> str:
    return (term.value or domain).lower().rstrip(".")


def needed(record: str, domain: str) -> list[tuple[str, str]]:
    """The queries evaluating `record` needs beyond its own TXT (includes, redirect,
    the a and mx mechanisms' names)."""
    terms, _ = parse(record)
    wanted: list[tuple[str, str]] = []
    for term in terms:
        target = _target(term, domain)
        if term.name in ("include", "redirect"):
            wanted.append((target, "TXT"))
        elif term.name == "a":
            wanted += [(target, "A"), (target, "AAAA")]
        elif term.name == "mx":
            wanted.append((target, "MX"))
    return wanted


@dataclass(slots=True)
class _Walk:
    """What walking a domain's SPF tree found."""

    lookups: int = 0
    reached: set[str] | None = None
    loops: list[str] | None = None
    broken: list[str] | None = None
    unknown: list[str] | None = None

    def note(self, kind: str, text: str) -> None:
        found = getattr(self, kind) or []
        found.append(text)
        setattr(self, kind, found)


def _walk(records: Records, domain: str, path: tuple[str, ...], walk: _Walk) -> None:
    """Count the lookups of `domain`'s SPF record and of everything it includes."""
    walk.reached = (walk.reached or set()) | {domain}
    answer = records.get((domain, "TXT"))
    if answer is None:
        walk.note("unknown", f"{domain} (not fetched: too many lookups)")
        return
    if answer.error and answer.error != NXDOMAIN:
        walk.note("unknown", f"{domain} ({answer.error})")
        return
    found = spf_records(records, domain)
    if len(found) != 1:
        walk.note("broken", f"{domain} has {len(found) or 'no'} SPF record(s)")
        return
    terms, _ = parse(found[0])
    has_all = any(t.name == "all" for t in terms)
    for term in terms:
        if term.name not in _LOOKUPS or (term.name == "redirect" and has_all):
            continue
        walk.lookups += 1
        if term.name in ("include", "redirect"):
            target = _target(term, domain)
            if target in path:
                walk.note("loops", " -> ".join((*path, target)))
                continue
            _walk(records, target, (*path, target), walk)


def matches(records: Records, domain: str, ip: str, path: tuple[str, ...] = ()) -> str | None:
    """The SPF result for `ip` sending as `domain` (pass, fail, softfail, neutral), or
    None when nothing in the record matches it (neutral by default)."""
    found = spf_records(records, domain)
    if len(found) != 1 or domain in path:
        return None
    address = ipaddress.ip_address(ip)
    terms, _ = parse(found[0])
    for term in terms:
        if term.modifier:
            continue
        if _matches(records, domain, term, address, (*path, domain)):
            return _QUALIFIERS[term.qualifier]
    redirect = next((t for t in terms if t.name == "redirect"), None)
    if redirect is not None and not any(t.name == "all" for t in terms):
        return matches(records, _target(redirect, domain), ip, (*path, domain))
    return None


def _matches(
    records: Records,
    domain: str,
    term: Term,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    path: tuple[str, ...],
) -> bool:
    if term.name == "all":
        return True
    if term.name in ("ip4", "ip6"):
        network = ipaddress.ip_network(term.value, strict=False)
        return network.version == address.version and address in network
    if term.name == "include":
        return matches(records, _target(term, domain), str(address), path) == "pass"
    if term.name in ("a", "mx"):
        hosts = [_target(term, domain)]
        if term.name == "mx":
            mx = records.get((hosts[0], "MX"))
            hosts = [r.split()[-1].rstrip(".") for r in (mx.records if mx else ())]
        v4, _, v6 = term.cidr.lstrip("/").partition("//")
        prefix = (v4 or "32") if address.version == 4 else (v6 or "128")
        for host in hosts:
            for rdtype in ("A", "AAAA"):
                answer = records.get((host, rdtype))
                for value in answer.records if answer else ():
                    net = ipaddress.ip_network(f"{value}/{prefix}", strict=False)
                    if net.version == address.version and address in net:
                        return True
    return False


def check_spf(
    records: Records, domain: str, ips: tuple[str, ...], includes: tuple[str, ...] = ()
) -> list[Line]:
    """The SPF lines of the report for `domain`: the record, its lookups, its end, the
    IPs that send as it, and the includes an ESP asks for (`include:spf.esp.example`)."""
    answer = records.get((domain, "TXT"))
    if answer is not None and answer.error and answer.error != NXDOMAIN:
        return [unchecked("spf", domain, answer.error)]
    found = spf_records(records, domain)
    if not found:
        return [
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                "no SPF record: receivers cannot tell which servers may send as this domain",
                f'publish one TXT record at {domain}: "v=spf1 include:<your provider> -all" '
                "(your provider's documentation names the include)",
            )
        ]
    if len(found) > 1:
        return [
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                f"{len(found)} SPF records: receivers treat more than one as an error",
                "merge them into one TXT record starting v=spf1",
            )
        ]
    terms, problems = parse(found[0])
    if problems:
        return [
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                "SPF record does not parse: " + "; ".join(problems),
                "correct the record (RFC 7208 syntax); receivers ignore a broken one",
            )
        ]
    lines = [Line("spf", Outcome.PASS, domain, f"one SPF record: {found[0]}")]
    walk = _Walk()
    _walk(records, domain, (domain,), walk)
    lines += _lookup_lines(walk, domain)
    lines += _all_lines(terms, domain)
    lines += [_include_line(walk, domain, name) for name in includes]
    if any(t.name == "ptr" for t in terms):
        lines.append(
            Line(
                "spf",
                Outcome.WARN,
                domain,
                "uses the ptr mechanism, which is slow and deprecated",
                "replace ptr with ip4:/ip6: or include: terms",
            )
        )
    lines += [_ip_line(records, domain, ip) for ip in ips]
    return lines


def _include_line(walk: _Walk, domain: str, include: str) -> Line:
    name = include.lower().rstrip(".")
    if name in (walk.reached or ()):
        return Line("spf", Outcome.PASS, name, f"{domain}'s SPF includes {name}")
    return Line(
        "spf",
        Outcome.FAIL,
        name,
        f"{domain}'s SPF does not include {name}: mail your provider sends fails SPF",
        f"add include:{name} before the all at the end of the record",
    )


def _lookup_lines(walk: _Walk, domain: str) -> list[Line]:
    lines = []
    for loop in walk.loops or ():
        lines.append(
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                f"include loop: {loop}",
                "remove the include that leads back to a record already included",
            )
        )
    for broken in walk.broken or ():
        lines.append(
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                f"an included record is unusable: {broken}",
                "fix or remove that include (receivers fail the whole SPF check)",
            )
        )
    for unknown in walk.unknown or ():
        lines.append(
            Line("spf", Outcome.WARN, domain, f"could not read an included record: {unknown}")
        )
    if walk.lookups > LOOKUP_LIMIT:
        lines.append(
            Line(
                "spf",
                Outcome.FAIL,
                domain,
                f"{walk.lookups} DNS lookups through includes and redirects; the limit is "
                f"{LOOKUP_LIMIT}, past it receivers fail SPF",
                "drop includes you no longer use, or replace some with ip4:/ip6: ranges",
            )
        )
    else:
        lines.append(
            Line("spf", Outcome.PASS, domain, f"{walk.lookups} of {LOOKUP_LIMIT} DNS lookups")
        )
    return lines


def _all_lines(terms: list[Term], domain: str) -> list[Line]:
    final = next((t for t in terms if t.name == "all"), None)
    if final is None:
        if any(t.name == "redirect" for t in terms):
            return []
        return [
            Line(
                "spf",
                Outcome.WARN,
                domain,
                "no 'all' at the end: servers not listed get a neutral result",
                "end the record with -all (or ~all while you test)",
            )
        ]
    if final.qualifier in "+?":
        return [
            Line(
                "spf",
                Outcome.WARN,
                domain,
                f"ends with {final.qualifier}all: any server in the world may send as {domain}",
                "end the record with -all (or ~all while you test)",
            )
        ]
    return []


def _ip_line(records: Records, domain: str, ip: str) -> Line:
    result = matches(records, domain, ip)
    if result == "pass":
        return Line("spf", Outcome.PASS, ip, f"{ip} may send as {domain}")
    return Line(
        "spf",
        Outcome.FAIL,
        ip,
        f"{ip} is not authorised by {domain}'s SPF (result: {result or 'neutral'})",
        f"add ip{ipaddress.ip_address(ip).version}:{ip} or your provider's include to the record",
    )
