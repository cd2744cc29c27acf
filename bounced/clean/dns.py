"""DNS for `bounced clean` and `bounced domain check`: dnspython's async resolver,
configured from `[dns]`, its answers turned into plain values.

`Resolver.query` never raises for what DNS says: NXDOMAIN, no data, SERVFAIL and
timeouts are answers too (`Answer.error`), so the checks judge them like any
other record. `MailDomains` is the list cleaner's edge: one lookup per distinct
domain for the whole run (cached), at most `concurrency` in flight, run on an
event loop in a background thread so the rows keep streaming while lookups for
the rows ahead are out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from bounced.config import DnsSettings

__all__ = [
    "Answer",
    "MailAnswer",
    "MailDomains",
    "MailKind",
    "Resolver",
    "mail_answer",
    "nameserver_address",
]

NXDOMAIN = "nxdomain"
SERVFAIL = "servfail"
TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Answer:
    """The records of one query as text (TXT strings joined; MX as `preference host`),
    or `error`: nxdomain, servfail or timeout. No records and no error is NODATA.
    `canonical` is the name at the end of any CNAME chain."""

    records: tuple[str, ...] = ()
    error: str = ""
    canonical: str = ""


class MailKind(StrEnum):
    """Whether a domain accepts mail, as its MX (else A/AAAA) records say."""

    MX = "mx"
    ADDRESS = "address"  # no MX: mail goes to the A/AAAA host (RFC 5321 5.1)
    NULL_MX = "null_mx"
    NXDOMAIN = "nxdomain"
    NO_MAIL = "no_mail"
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"


@dataclass(frozen=True, slots=True)
class MailAnswer:
    kind: MailKind
    hosts: tuple[str, ...] = ()


def nameserver_address(text: str) -> tuple[str, int]:
    """`10.0.0.53`, `10.0.0.53:5353`, `::1` or `[::1]:5353` as (address, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


class Resolver:
    """An async stub resolver with the `[dns]` settings; no cache of its own (the
    callers keep what they need)."""

    def __init__(self, settings: DnsSettings) -> None:
        resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*nameserver_address(n)) for n in settings.nameservers
            ]
        seconds = settings.timeout.total_seconds()
        resolver.timeout = resolver.lifetime = seconds
        resolver.cache = None
        self._resolver = resolver

    async def query(self, name: str, rdtype: str) -> Answer:
        try:
            answer = await self._resolver.resolve(
                name, rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return Answer(error=NXDOMAIN)
        except dns.exception.Timeout:
            return Answer(error=TIMEOUT)
        except (dns.resolver.NoNameservers, dns.resolver.YXDOMAIN, dns.resolver.NoAnswer):
            return Answer(error=SERVFAIL)
        canonical = answer.canonical_name.to_text(omit_final_dot=True)
        if answer.rrset is None:
            return Answer(canonical=canonical)
        return Answer(tuple(_text(r) for r in answer.rrset), canonical=canonical)


def _text(rdata: object) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:  # type: ignore[attr-defined]
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


def _hosts(records: Iterable[str]) -> tuple[tuple[int, str], ...]:
    pairs = (r.split(maxsplit=1) for r in records)
    return tuple(sorted((int(p), h.rstrip(".") or ".") for p, h in pairs))


async def mail_answer(resolver: Resolver, domain: str) -> MailAnswer:
    """Where mail for `domain` goes: its MX hosts, else (no MX at all) its own address;
    a null MX (one MX of `.`, RFC 7505) says it takes no mail."""
    mx = await resolver.query(domain, "MX")
    if mx.error:
        return MailAnswer(MailKind(mx.error))
    if mx.records:
        hosts = _hosts(mx.records)
        if [h for _, h in hosts] == ["."]:
            return MailAnswer(MailKind.NULL_MX)
        return MailAnswer(MailKind.MX, tuple(h for _, h in hosts if h != "."))
    for rdtype in ("A", "AAAA"):
        address = await resolver.query(domain, rdtype)
        if address.error and address.error != NXDOMAIN:
            return MailAnswer(MailKind(address.error))
        if address.records:
            return MailAnswer(MailKind.ADDRESS, (domain,))
    return MailAnswer(MailKind.NO_MAIL)


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class MailDomains:
    """Mail answers per domain for a whole run, looked up ahead on a background event
    loop. `submit` starts (or finds) the lookup and returns its Future at once."""

    def __init__(self, settings: DnsSettings) -> None:
        self._resolver = Resolver(settings)
        self._concurrency = max(1, settings.concurrency)
        self._cache: dict[str, Future[MailAnswer]] = {}
        self._loop = asyncio.new_event_loop()
        self._limit: asyncio.Semaphore | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bounced-dns", daemon=True
        )
        self._thread.start()

    @property
    def queried(self) -> int:
        """Distinct domains looked up so far."""
        return len(self._cache)

    def submit(self, domain: str) -> Future[MailAnswer]:
        future = self._cache.get(domain)
        if future is None:
            future = asyncio.run_coroutine_threadsafe(self._lookup(domain), self._loop)
            self._cache[domain] = future
        return future

    async def _lookup(self, domain: str) -> MailAnswer:
        if self._limit is None:  # made on the loop that uses it
            self._limit = asyncio.Semaphore(self._concurrency)
        async with self._limit:
            return await mail_answer(self._resolver, domain)

    def close(self) -> None:
        """Cancel the lookups still out (a reader that stopped early) and stop the loop."""
        asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> MailDomains:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
