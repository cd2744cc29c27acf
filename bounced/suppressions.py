"""The Python API of the suppression list: what applications import, and what the CLI wraps.

    from bounced import Suppressions

    with Suppressions.open("sqlite:///bounced.db") as sup:
        sup.ingest(raw_bytes, source="mailbox")
        if sup.check("someone@example.com").sendable:
            ...

Every address goes through `bounced.addresses.normalize` here, so the store only
sees canonical addresses; every bounce goes through `bounced.parse` and the
policy. Errors are the documented ones in `bounced.errors` (re-exported here):
`InvalidAddress`, `UnknownAddress`, `UnknownSelection`, `DatabaseUnavailable`,
`ConfigError`, all `BouncedError`.
"""

from __future__ import annotations

import builtins
import getpass
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple, TextIO

from bounced.addresses import normalize, normalize_allow_entry, normalize_many
from bounced.config import Settings, load_settings
from bounced.db.database import batched
from bounced.db.filters import NO_FILTERS, Filters
from bounced.db.replay import Change
from bounced.db.reports import LIST_COLUMNS
from bounced.db.retention import Pruned
from bounced.db.store import Store
from bounced.db.suppression import Incoming, Recorded
from bounced.dsn import Bounce, Report, parse
from bounced.errors import (
    BouncedError,
    ConfigError,
    DatabaseUnavailable,
    InvalidAddress,
    UnknownAddress,
    UnknownSelection,
)
from bounced.formats import Format, write_rows
from bounced.keys import message_key, notice_id
from bounced.policy import Action, Effect, sendable

__all__ = [
    "INGEST_BATCH",
    "AdminResult",
    "BouncedError",
    "Change",
    "Check",
    "ConfigError",
    "DatabaseUnavailable",
    "Filters",
    "Ingested",
    "InvalidAddress",
    "Outcome",
    "Pruned",
    "RowResult",
    "Suppressions",
    "UnknownAddress",
    "UnknownSelection",
    "Verdict",
    "plain",
]

#: Messages recorded per transaction by `ingest_many`: fewer commits and round trips,
#: same guarantees. 100 -> 400 (benches/store.py, 100 000 generated notices): four
#: SQLite writers take a quarter of the turns (5,700-5,900 -> 6,700 msg/s), one
#: PostgreSQL writer a quarter of the round trips (3,000 -> 3,660 msg/s).
INGEST_BATCH = 400


class Outcome(StrEnum):
    """What happened to one message handed to `ingest`."""

    RECORDED = "recorded"  # at least one row was new
    DUPLICATE = "duplicate"  # every row had been recorded before
    NOT_BOUNCE = "not_bounce"  # a person writing back, a newsletter: nothing to record
    UNREADABLE = "unreadable"  # looks like a bounce, but no usable recipient was found


@dataclass(frozen=True, slots=True)
class RowResult:
    """One recipient row of an ingested message."""

    recipient: str
    address: str | None
    duplicate: bool = False
    effects: frozenset[Effect] = frozenset()
    problem: str = ""

    @property
    def blocked(self) -> bool:
        return Effect.BLOCKED in self.effects


@dataclass(frozen=True, slots=True)
class Ingested:
    """The result of ingesting one message."""

    source: str
    outcome: Outcome
    report: Report
    rows: tuple[RowResult, ...] = ()

    @property
    def new_blocks(self) -> list[str]:
        return [r.address for r in self.rows if r.blocked and r.address]

    @property
    def problems(self) -> list[str]:
        """Why nothing (or not everything) was recorded, in words: rows whose recipient
        is not an address, and the parser's account of a message it could not use."""
        unused = self.outcome in (Outcome.NOT_BOUNCE, Outcome.UNREADABLE)
        rows = [f"{r.recipient}: {r.problem}" for r in self.rows if r.problem]
        return rows + list(self.report.problems if unused else ())


class Check(NamedTuple):
    """May this address be mailed? `state` is empty for an address the store never saw.
    (A tuple rather than a dataclass: check_many makes a million of them.)"""

    address: str
    normalized: str | None
    sendable: bool
    state: str = ""
    reason: str = ""

    @property
    def verdict(self) -> str:
        if self.normalized is None:
            return "invalid"
        return "send" if self.sendable else "blocked"


class Verdict(NamedTuple):
    """A check with what the store knows besides (`verdicts`): how many returns, when
    it was blocked, the last bounce. `row` is None for an address the store never saw."""

    check: Check
    row: Any = None


@dataclass(frozen=True, slots=True)
class AdminResult:
    """Addresses an admin action changed, and those it did not know."""

    done: list[str]
    unknown: list[str]


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with times as ISO 8601 text (UTC), ready for JSON, CSV and tables."""
    return {
        k: v.isoformat(timespec="seconds") if isinstance(v, datetime) else v for k, v in row.items()
    }


def _invalid(text: str, error: InvalidAddress) -> Check:
    return Check(text, None, False, "", f"invalid address: {error.reason}")


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Suppressions:
    """A suppression list in a database: check, ingest and manage addresses."""

    def __init__(self, store: Store, settings: Settings, actor: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.actor = _actor(actor)
        self._fold = settings.policy.case_sensitive_local_part

    @classmethod
    def open(
        cls,
        target: str | Settings | None = None,
        *,
        actor: str | None = None,
        clock: Any = None,
        read_only: bool = False,
    ) -> Suppressions:
        """Open the store. `target` is a database URL (other settings from config.toml and
        the environment, as the CLI reads them), a Settings object, or None for the
        configured database. An empty database gets its schema. `read_only` opens it for
        lookups only (`check`), which also works on a file that may not be written."""
        if isinstance(target, Settings):
            settings = target
        else:
            settings = load_settings(overrides={"database_url": target})
        return cls(Store.open(settings, clock=clock, read_only=read_only), settings, actor)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Suppressions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- addresses ----------------------------------------------------------------------

    def normalize(self, address: str) -> str:
        """The canonical form the store uses, or InvalidAddress."""
        return normalize(address, case_sensitive_local_part=self._fold)

    def _normalize_all(self, addresses: Iterable[str]) -> list[str]:
        return [self.normalize(a) for a in addresses]

    # --- checking -----------------------------------------------------------------------

    def check(self, address: str) -> Check:
        """The verdict for one address (an invalid one is not sendable)."""
        return next(self.check_many([address]))

    def check_many(self, addresses: Iterable[str], *, batch: int = 1000) -> Iterator[Check]:
        """Verdicts in input order, streamed: reads `batch` addresses, asks the store
        once for them all, yields, and goes on. Memory stays flat for any input size.
        Lines are read as `check --file` reads them: surrounding white space (the line
        end) stripped, blank lines and `#` comments skipped, so an open file will do."""
        new = tuple.__new__  # Check(...) without the Python-level __new__: a million times
        unknown = (True, "", "")
        for lines in batched(addresses, batch):
            chunk = [t for t in map(str.strip, lines) if t and t[0] != "#"]
            normal = normalize_many(chunk, case_sensitive_local_part=self._fold)
            found = self.store.lookup([n for n in normal if type(n) is str])
            for text, n in zip(chunk, normal, strict=True):
                if isinstance(n, InvalidAddress):
                    yield _invalid(text, n)
                else:
                    yield new(Check, (text, n, *found.get(n, unknown)))

    def verdicts(self, addresses: Iterable[str], *, batch: int = 1000) -> Iterator[Verdict]:
        """`check_many` with each address's stored row (returns, last bounce, blocked at),
        in input order, streamed: one query per `batch` addresses."""
        for chunk in batched(addresses, batch):
            normal = normalize_many(chunk, case_sensitive_local_part=self._fold)
            rows = self.store.details([n for n in normal if type(n) is str])
            for text, n in zip(chunk, normal, strict=True):
                if isinstance(n, InvalidAddress):
                    yield Verdict(_invalid(text, n))
                elif (row := rows.get(n)) is None:
                    yield Verdict(Check(text, n, True))
                else:
                    state, reason = row.state, row.blocked_reason or ""
                    yield Verdict(Check(text, n, sendable(state), state, reason), row)

    # --- ingesting ----------------------------------------------------------------------

    def ingest(
        self, raw: bytes | str, *, source: str = "", received_at: datetime | None = None
    ) -> Ingested:
        """Parse one returned message and record its rows."""
        return next(self.ingest_reports([(source, raw, parse(raw))], received_at=received_at))

    def ingest_many(self, messages: Iterable[tuple[str, bytes]]) -> Iterator[Ingested]:
        """Parse and record (source, raw) pairs, several messages per transaction."""
        return self.ingest_reports((name, raw, parse(raw)) for name, raw in messages)

    def ingest_reports(
        self,
        items: Iterable[tuple[str, bytes | str, Report]],
        *,
        received_at: datetime | None = None,
    ) -> Iterator[Ingested]:
        """Record messages parsed elsewhere (the CLI parses in worker processes).
        Results come back per message, after the batch holding it has committed."""
        for chunk in batched(items, INGEST_BATCH):
            when = received_at or datetime.now(UTC)
            plans = [self._plan(name, raw, report, when) for name, raw, report in chunk]
            incoming = [inc for _, rows in plans for _, inc in rows if inc is not None]
            recorded = iter(self.store.record(incoming))
            for (name, _raw, report), (outcome, rows) in zip(chunk, plans, strict=True):
                yield self._result(name, report, outcome, rows, recorded)

    def ingest_bounces(
        self,
        items: Iterable[tuple[str, str, Sequence[Bounce]]],
        *,
        received_at: datetime | None = None,
    ) -> Iterator[Ingested]:
        """Record rows read elsewhere than from a returned message (a provider's webhook
        event, a suppression-list import): (source, notice, bounces) per notice, where
        `notice` is the notice's identity (a provider's event id), so the same event
        delivered twice is recorded once. Same policy, store and counting as `ingest`."""
        return self.ingest_reports(
            (
                (source, b"", Report(bounces[0].kind, tuple(bounces), message_id=notice))
                for source, notice, bounces in items
                if bounces
            ),
            received_at=received_at,
        )

    def _plan(
        self, name: str, raw: bytes | str, report: Report, when: datetime
    ) -> tuple[Outcome | None, list[tuple[RowResult, Incoming | None]]]:
        """The rows to record for one message; an outcome when there are none."""
        if not report.is_bounce:
            return Outcome.NOT_BOUNCE, []
        if not report.bounces:
            return Outcome.UNREADABLE, []
        rows: list[tuple[RowResult, Incoming | None]] = []
        notice = notice_id(report, raw)
        for bounce in report.bounces:
            try:
                address = self.normalize(bounce.recipient)
            except InvalidAddress as exc:
                rows.append((RowResult(bounce.recipient, None, problem=exc.reason), None))
                continue
            key = message_key(bounce, notice, address)
            incoming = Incoming(address, key, bounce, name, when, notice)
            rows.append((RowResult(bounce.recipient, address), incoming))
        return None, rows

    @staticmethod
    def _result(
        name: str,
        report: Report,
        outcome: Outcome | None,
        rows: list[tuple[RowResult, Incoming | None]],
        recorded: Iterator[Recorded],
    ) -> Ingested:
        results = []
        for row, incoming in rows:
            if incoming is None:
                results.append(row)
                continue
            rec = next(recorded)
            effects = frozenset() if rec.decision is None else rec.decision.effects
            results.append(
                RowResult(row.recipient, row.address, duplicate=rec.duplicate, effects=effects)
            )
        if outcome is None:
            fresh = any(r.address and not r.duplicate for r in results)
            if fresh:
                outcome = Outcome.RECORDED
            elif any(r.address for r in results):
                outcome = Outcome.DUPLICATE
            else:
                outcome = Outcome.UNREADABLE
        return Ingested(name, outcome, report, tuple(results))

    # --- admin actions ------------------------------------------------------------------

    def _admin(self, addresses: Iterable[str], action: Action, note: str = "") -> AdminResult:
        done, unknown = self.store.administer(
            self._normalize_all(addresses), action, self.actor, note=note
        )
        return AdminResult(done, unknown)

    def unmark(self, addresses: Iterable[str]) -> AdminResult:
        """Remove the bounce mark: unblock and reset the count (history stays)."""
        return self._admin(addresses, Action.UNMARK)

    def block(self, addresses: Iterable[str], *, note: str = "") -> AdminResult:
        """Block by hand (addresses never seen are added)."""
        return self._admin(addresses, Action.BLOCK, note)

    def former_employee(self, addresses: Iterable[str], *, undo: bool = False) -> AdminResult:
        """Mark as a former employee (blocked with its own state), or undo that."""
        action = Action.UNDO_FORMER_EMPLOYEE if undo else Action.FORMER_EMPLOYEE
        return self._admin(addresses, action)

    def delete(self, addresses: Iterable[str]) -> AdminResult:
        """Erase addresses and their history (the deletion itself is audited)."""
        done, unknown = self.store.delete(self._normalize_all(addresses), self.actor)
        return AdminResult(done, unknown)

    def allow_entry(self, entry: str) -> str:
        """An allow-list entry in canonical form: an address, or `@domain`."""
        return normalize_allow_entry(entry, case_sensitive_local_part=self._fold)

    def allow(self, entries: Iterable[str], *, remove: bool = False) -> list[str]:
        """Add (or remove) allow-list entries: addresses, or domains written `@domain`."""
        normal = [self.allow_entry(e) for e in entries]
        return self.store.allow(normal, self.actor, remove=remove)

    def allow_list(self) -> list[dict[str, Any]]:
        """Allow-list entries: those of `[policy] allow` (no time: they are settings),
        attributed to where they were set, then those added with `allow`."""
        from bounced.config import setting_origin

        origin = setting_origin("policy.allow")
        rows = self.store.allow_entries()
        return [r | {"actor": origin} if r["created_at"] is None else r for r in rows]

    # --- selections ---------------------------------------------------------------------

    def selection_add(self, name: str, addresses: Iterable[str]) -> int:
        """Add addresses to a selection (created when new); returns how many were added."""
        return self.store.select_add(name, self._normalize_all(addresses), self.actor)

    def selection_add_where(self, name: str, filters: Filters) -> int:
        """Add every address matching the list filters to a selection."""
        if filters.selection:
            self.require_selection(filters.selection)
        return self.store.select_where(name, self._filters(filters), self.actor)

    def selection_remove(self, name: str, addresses: Iterable[str]) -> int:
        return self.store.select_remove(name, self._normalize_all(addresses), self.actor)

    def selections(self) -> list[dict[str, Any]]:
        return self.store.selections.counts()

    def require_selection(self, name: str) -> None:
        """UnknownSelection unless the selection exists: a command checks this before
        it creates its output file."""
        self.store.require_selection(name)

    # --- reading ------------------------------------------------------------------------

    def _filters(self, f: Filters) -> Filters:
        """Domains in filters are written as people write them; the store keeps IDNA."""
        if not f.domain:
            return f
        domains = tuple(normalize_allow_entry("@" + d.lstrip("@"))[1:] for d in f.domain)
        return replace(f, domain=domains)

    def list(
        self, filters: Filters = NO_FILTERS, *, after: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Addresses matching the filters, streamed in address order, as rows of
        LIST_COLUMNS; `limit` of them after the address `after` for a page."""
        return self.store.rows(self._filters(filters), after=after, limit=limit)

    def export(self, out: TextIO, filters: Filters = NO_FILTERS, fmt: Format = Format.CSV) -> int:
        """Write the matching addresses to `out` (streaming); returns the row count."""
        return write_rows(fmt, LIST_COLUMNS, map(plain, self.list(filters)), out)

    def show(self, address: str) -> dict[str, Any]:
        """State, events and admin actions of one address, or UnknownAddress."""
        normal = self.normalize(address)
        found = self.store.show(normal)
        if found is None:
            raise UnknownAddress([normal])
        return found

    def stats(self, days: int = 30) -> dict[str, builtins.list[tuple[str, int]]]:
        return self.store.stats(days)

    def deliverability(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        return self.store.deliverability(since)

    def apply_policy(self, *, dry_run: bool = True) -> builtins.list[Change]:
        """Recompute every address under the current policy; apply unless dry_run.
        Applied changes are audited, with the policy settings and where each came from
        (the config file or the environment), so a later reader knows why."""
        changes = list(self.store.apply_policy(dry_run=dry_run))
        if changes and not dry_run:
            detail = "; ".join(
                f"{key}={value} ({origin})" for key, value, origin in self.policy_sources()
            )
            addresses = [c.address for c in changes]
            self.store.database.write(
                lambda conn: self.store.suppression.audit(
                    conn, "policy_apply", addresses, self.actor, detail
                )
            )
        return changes

    def policy_sources(self) -> builtins.list[tuple[str, Any, str]]:
        """The `[policy]` settings not at their defaults: (key, value, where it was set)."""
        from bounced.config import PolicySettings, setting_origin

        default = PolicySettings()
        return [
            (f"policy.{name}", value, setting_origin(f"policy.{name}"))
            for name in PolicySettings.__slots__
            if (value := getattr(self.settings.policy, name)) != getattr(default, name)
        ]

    def audit(
        self,
        *,
        address: str | None = None,
        actor: str | None = None,
        action: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The audit log (admin actions: who, what, on which address), oldest first."""
        from bounced.db.audit_log import AuditFilters, audit_rows

        normal = None if address is None else self.normalize(address)
        filters = AuditFilters(normal, actor, tuple(action), since, until)
        return audit_rows(self.store.database, filters)

    def upgrade(self) -> str:
        return self.store.upgrade()

    def prune(self, *, dry_run: bool = False, max_batches: int | None = None) -> Pruned:
        """Delete the events older than `[store] keep_events` (none when it is 0), in
        batches; no address's state or count changes (bounced.db.retention says what
        history goes)."""
        return self.store.prune(dry_run=dry_run, max_batches=max_batches)
