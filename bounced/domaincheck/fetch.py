"""The DNS edge of the domain check: ask every query the report needs, concurrently,
until the answers refer to nothing new (includes of includes, MX hosts, PTR names)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from bounced.clean.dns import Answer, Resolver
from bounced.domaincheck.evaluate import Request, dkim_name, dmarc_names
from bounced.domaincheck.records import Records, reverse_name
from bounced.domaincheck.spf import needed, spf_records

__all__ = ["MAX_QUERIES", "fetch"]

#: Queries one check asks at most (an SPF tree far past its 10-lookup limit is cut).
MAX_QUERIES = 300


async def fetch(request: Request, resolver: Resolver) -> dict[tuple[str, str], Answer]:
    records: dict[tuple[str, str], Answer] = {}
    while len(records) < MAX_QUERIES:
        todo = [q for q in dict.fromkeys(_wanted(request, records)) if q not in records]
        todo = todo[: MAX_QUERIES - len(records)]
        if not todo:
            break
        answers = await asyncio.gather(*(resolver.query(name, rdtype) for name, rdtype in todo))
        records.update(zip(todo, answers, strict=True))
    return records


def _wanted(request: Request, records: Records) -> Iterator[tuple[str, str]]:
    """Every query the report needs, given the answers so far."""
    d, rp = request.domain, request.return_path
    for name in filter(None, (d, rp)):
        yield from ((name, t) for t in ("TXT", "MX", "A", "AAAA"))
    yield from ((name, "TXT") for name in dmarc_names(d))
    for selector in request.selectors:
        yield from ((dkim_name(selector, d), t) for t in ("TXT", "CNAME"))
    if rp:
        yield rp, "CNAME"
        yield from _hosts_of(records, rp)
    for ip in request.ips:
        yield reverse_name(ip), "PTR"
        ptr = records.get((reverse_name(ip), "PTR"))
        for host in ptr.records if ptr else ():
            yield from ((host.rstrip("."), t) for t in ("A", "AAAA"))
    yield from _spf_tree(records, [d, rp] if rp else [d])


def _hosts_of(records: Records, domain: str) -> Iterator[tuple[str, str]]:
    mx = records.get((domain, "MX"))
    for record in mx.records if mx else ():
        host = record.split()[-1].rstrip(".")
        if host:
            yield from ((host, t) for t in ("A", "AAAA"))


def _spf_tree(records: Records, roots: list[str]) -> Iterator[tuple[str, str]]:
    """The queries of SPF records reachable from `roots` through include/redirect."""
    seen: set[str] = set()
    while roots:
        name = roots.pop()
        if name in seen:
            continue
        seen.add(name)
        for record in spf_records(records, name):
            for query in needed(record, name):
                yield query
                if query[1] == "TXT":
                    roots.append(query[0])
                elif query[1] == "MX":
                    yield from _hosts_of(records, query[0])
