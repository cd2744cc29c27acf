"""DNS for `bounced clean` and `bounced domain check`: dnspython's async resolver,
configured from `[dns]`, its answers turned into plain values.

`Resolver.query` never raises for what DNS says: NXDOMAIN, no data, SERVFAIL and
timeouts are answers too (`Answer.error`), so the checks judge them like any
other record. `MailDomains` is the list cleaner's edge: one lookup per distinct
domain for the whole run (cached), at most `concurrency` in flight, the lookups
for the rows ahead out while the rows before them are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from bounced.config import DnsSettings

__all__ = [
    "NXDOMAIN",
    "SERVFAIL",
    "TIMEOUT",
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
    return str(rdata.to_text())  # type: ignore[attr-defined]


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


class MailDomains:
    """Mail answers per domain for a whole run. `submit` starts (or finds) the lookup
    of a domain and returns its Task at once; `answer` gives its MailAnswer, running
    the event loop (every lookup out makes progress) until that one is done.

    The loop runs in the caller's thread, only while the caller waits for an answer
    or `poll`s: no second thread contends with the row checks for the interpreter,
    and a caller in any thread (the HTTP API's thread pool) gets its own loop.
    """

    def __init__(self, settings: DnsSettings) -> None:
        self._resolver = Resolver(settings)
        self._concurrency = max(1, settings.concurrency)
        self._cache: dict[str, asyncio.Task[MailAnswer]] = {}
        self._loop = asyncio.new_event_loop()
        self._limit: asyncio.Semaphore | None = None

    def submit(self, domain: str) -> asyncio.Task[MailAnswer]:
        task = self._cache.get(domain)
        if task is None:
            task = self._loop.create_task(self._lookup(domain))
            self._cache[domain] = task
        return task

    def answer(self, task: asyncio.Task[MailAnswer]) -> MailAnswer:
        if not task.done():
            self._loop.run_until_complete(asyncio.wait([task]))
        return task.result()

    def poll(self) -> None:
        """Let the lookups out take what has arrived, without waiting."""
        self._loop.run_until_complete(asyncio.sleep(0))

    async def _lookup(self, domain: str) -> MailAnswer:
        if self._limit is None:  # made on the loop that uses it
            self._limit = asyncio.Semaphore(self._concurrency)
        async with self._limit:
            return await mail_answer(self._resolver, domain)

    def close(self) -> None:
        """Cancel the lookups still out (a reader that stopped early); close the loop."""
        pending = [t for t in self._cache.values() if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.wait(pending))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def __enter__(self) -> MailDomains:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
