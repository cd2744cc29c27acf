"""`clean(rows)`: the checks of bounced.clean.checks over a stream of rows, in order.

Rows go through in chunks: each chunk is normalised at once (the bulk path of
bounced.addresses), checked for duplicates, typos, roles and disposable domains,
looked up in the suppression store with one `check_many`, and its domains are
handed to the DNS lookups (one per distinct domain for the run). A chunk is
yielded once AHEAD more have been prepared, so their lookups are out while this
one's answers are read. Memory holds AHEAD + 1 chunks and one entry per
distinct address (for duplicates) and per domain (the caches).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from bounced.addresses import normalize_many
from bounced.clean.checks import (
    CleanReason,
    DisposableDomains,
    Finding,
    Mode,
    Status,
    Typos,
    disposable_finding,
    dns_finding,
    is_role,
    role_finding,
    suppression_finding,
    typo_finding,
    verdict,
)
from bounced.clean.dns import MailAnswer, MailDomains
from bounced.clean.rules import CleanRules, load_clean_rules
from bounced.config import Settings, load_settings
from bounced.errors import InvalidAddress

if TYPE_CHECKING:
    from bounced.suppressions import Suppressions

__all__ = ["AHEAD", "CHUNK", "CleanOptions", "Cleaned", "Record", "Unreadable", "clean"]

#: Rows checked together: one suppression query and one round of DNS lookups each.
CHUNK = 2000
#: Chunks prepared ahead of the one being written: their lookups are out meanwhile,
#: so a slow domain holds up the output only once it reaches the front.
AHEAD = 8


@dataclass(frozen=True, slots=True)
class CleanOptions:
    """Which checks run. `roles` and `disposable`: off, risky (the default) or reject."""

    dns: bool = True
    typos: bool = True
    duplicates: bool = True
    roles: Mode = Mode.RISKY
    disposable: Mode = Mode.RISKY


class Record(NamedTuple):
    """A row read from a file: its line number and its cells (bounced.clean.reading)."""

    line: int
    cells: tuple[str, ...]


class Unreadable(NamedTuple):
    """A row that could not be read: kept (as `unreadable_row`) and reported, not dropped."""

    line: int
    cells: tuple[str, ...]
    problem: str


class Cleaned(NamedTuple):
    """The verdict on one row. `row` is the item as given (a Record for files)."""

    line: int
    address: str
    normalized: str
    status: Status
    reason: str
    detail: str
    row: Any


class _Pending(NamedTuple):
    line: int
    address: str
    normalized: str
    findings: list[Finding]
    lookup: asyncio.Task[MailAnswer] | None
    row: Any


def clean(
    rows: Iterable[Any],
    *,
    column: int | str | None = None,
    options: CleanOptions = CleanOptions(),
    suppressions: Suppressions | None = None,
    settings: Settings | None = None,
    rules: CleanRules | None = None,
    disposable: DisposableDomains | None = None,
    domains: MailDomains | None = None,
) -> Iterator[Cleaned]:
    """Verdicts for `rows`, in order, one per row, streamed.

    A row is an address (str), a sequence of cells (the address at index `column`,
    default 0), a mapping (the address at key `column`), a Record or an Unreadable.
    `suppressions` is the store to check against (None: no store check). `domains`
    lets a caller share DNS answers across runs; by default each run has its own,
    with the `[dns]` settings.
    """
    settings = settings or (suppressions.settings if suppressions else load_settings())
    own_domains = domains is None and options.dns
    if own_domains:
        domains = MailDomains(settings.dns)
    checker = _Checker(options, rules or load_clean_rules(), disposable, suppressions, settings)
    try:
        lookups = domains if options.dns else None
        ahead: deque[list[_Pending | Cleaned]] = deque()
        for chunk in _chunks(rows, column):
            ahead.append(checker.prepare(chunk, lookups))
            if lookups is not None:
                lookups.poll()
            if len(ahead) > AHEAD:
                yield from _finish(ahead.popleft(), lookups)
        while ahead:
            yield from _finish(ahead.popleft(), lookups)
    finally:
        if own_domains and domains is not None:
            domains.close()


def _chunks(rows: Iterable[Any], column: int | str | None) -> Iterator[list[tuple[int, str, Any]]]:
    """(line, address text, row) in lists of CHUNK; an Unreadable's text is None."""
    chunk: list[tuple[int, Any, Any]] = []
    for number, row in enumerate(rows, 1):
        chunk.append(_address(number, row, column))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _address(number: int, row: Any, column: int | str | None) -> tuple[int, Any, Any]:
    if type(row) is str:
        return number, row, row
    if isinstance(row, Unreadable):
        return row.line, None, row
    if isinstance(row, Record):
        number, cells = row.line, row.cells
    else:
        cells = row
    key = 0 if column is None else column
    if isinstance(cells, Mapping):
        return number, _cell(cells.get(key)), row
    if isinstance(cells, Sequence) and isinstance(key, int):
        return number, _cell(cells[key] if key < len(cells) else ""), row
    raise TypeError(f"row {number}: cannot take column {key!r} of {type(row).__name__}")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _finish(prepared: list[_Pending | Cleaned], domains: MailDomains | None) -> Iterator[Cleaned]:
    for item in prepared:
        if isinstance(item, Cleaned):
            yield item
            continue
        findings = item.findings
        if item.lookup is not None and domains is not None:
            found = dns_finding(domains.answer(item.lookup))
            if found is not None:
                findings.append(found)
        status, reason, detail = verdict(findings)
        yield Cleaned(item.line, item.address, item.normalized, status, reason, detail, item.row)


class _Checker:
    """The state of one run: addresses seen, caches, the store's recent returns."""

    def __init__(
        self,
        options: CleanOptions,
        rules: CleanRules,
        disposable: DisposableDomains | None,
        suppressions: Suppressions | None,
        settings: Settings,
    ) -> None:
        self.options = options
        self.roles = rules.role_local_parts if options.roles != Mode.OFF else frozenset()
        self.typos = Typos(rules) if options.typos else None
        if options.disposable != Mode.OFF and disposable is None:
            disposable = DisposableDomains()
        self.disposable = disposable if options.disposable != Mode.OFF else None
        self.suppressions = suppressions
        self.returned = _recently_returned(suppressions, settings) if suppressions else set()
        self.fold = not settings.policy.case_sensitive_local_part
        self.seen: dict[str, int] = {}

    def prepare(
        self, chunk: list[tuple[int, Any, Any]], domains: MailDomains | None
    ) -> list[_Pending | Cleaned]:
        texts = [text for _, text, _ in chunk if text is not None]
        normal = iter(normalize_many(texts, case_sensitive_local_part=not self.fold))
        out: list[_Pending | Cleaned] = []
        for line, text, row in chunk:
            if text is None:
                out.append(_unreadable(row))
                continue
            n = next(normal)
            if type(n) is not str:
                out.append(_invalid(line, text, n, row))  # type: ignore[arg-type]
                continue
            out.append(self._check(line, text, n, row))
        self._store(out)
        if domains is not None:
            for i, item in enumerate(out):
                if isinstance(item, _Pending) and not _rejected(item.findings):
                    domain = item.normalized.rpartition("@")[2]
                    out[i] = item._replace(lookup=domains.submit(domain))
        return out

    def _check(self, line: int, text: str, n: str, row: Any) -> _Pending | Cleaned:
        if self.options.duplicates:
            first = self.seen.setdefault(n, line)
            if first != line:
                return Cleaned(
                    line,
                    text,
                    n,
                    Status.REJECT,
                    CleanReason.DUPLICATE.value,
                    f"duplicate of line {first}",
                    row,
                )
        local, _, domain = n.rpartition("@")
        findings: list[Finding] = []
        if self.typos is not None and (fix := self.typos.suggestion(domain)) is not None:
            findings.append(typo_finding(local, fix))
        if self.roles and is_role(local, self.roles):
            findings.append(role_finding(self.options.roles))
        if self.disposable is not None and (listed := self.disposable.match(domain)):
            findings.append(disposable_finding(self.options.disposable, listed))
        return _Pending(line, text, n, findings, None, row)

    def _store(self, out: list[_Pending | Cleaned]) -> None:
        """The suppression store's word on the chunk's addresses, in one query."""
        if self.suppressions is None:
            return
        pending = [(i, p) for i, p in enumerate(out) if isinstance(p, _Pending)]
        checks = self.suppressions.check_many([p.normalized for _, p in pending])
        for (_, item), check in zip(pending, checks, strict=True):
            found = suppression_finding(
                check.state, check.reason, check.normalized in self.returned
            )
            if found is not None:
                item.findings.insert(0, found)


def _rejected(findings: list[Finding]) -> bool:
    return any(f.status is Status.REJECT for f in findings)


def _invalid(line: int, text: str, error: InvalidAddress, row: Any) -> Cleaned:
    return Cleaned(
        line, text, "", Status.REJECT, CleanReason.INVALID_ADDRESS.value, error.reason, row
    )


def _unreadable(row: Unreadable) -> Cleaned:
    return Cleaned(
        row.line, "", "", Status.REJECT, CleanReason.UNREADABLE_ROW.value, row.problem, row
    )


def _recently_returned(suppressions: Suppressions, settings: Settings) -> set[str]:
    """Addresses still mailable whose mail came back within `[clean] returns_window`:
    usually few, so read once for the run."""
    from bounced.db.filters import Filters

    since = datetime.now(UTC) - settings.clean.returns_window
    wanted = Filters(status=("active",), min_returns=1, since=since)
    return {row["address"] for row in suppressions.list(wanted)}
