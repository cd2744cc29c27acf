"""The store: one `Database` and the repositories that share it, behind one object.

`bounced.suppressions.Suppressions` holds a Store; the sending log and the inbox
reach their repositories through it (`store.sending`, `store.inbox`), so every
part of bounced runs in the same transactions with the same error handling. The
methods here only pass calls on to the repository that does the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from bounced.config import Settings
from bounced.db.database import Database
from bounced.db.filters import NO_FILTERS, Filters
from bounced.db.inbox import InboxRepository
from bounced.db.replay import Change, ReplayRepository
from bounced.db.reports import ReportRepository
from bounced.db.retention import Pruned, RetentionRepository
from bounced.db.selections import SelectionRepository
from bounced.db.sending import SendingRepository
from bounced.db.suppression import Details, Incoming, Recorded, SuppressionRepository
from bounced.policy import Action

__all__ = ["Store"]


class Store:
    """The suppression list's database and its repositories."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.suppression = SuppressionRepository(database)
        self.selections = SelectionRepository(self.suppression)
        self.reports = ReportRepository(self.suppression)
        self.replay = ReplayRepository(self.suppression)
        self.sending = SendingRepository(database)
        self.inbox = InboxRepository(database)
        self.retention = RetentionRepository(database)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> Store:
        """Connect; on an empty database create the schema; refuse an outdated one
        (`read_only`: see `Database.open`)."""
        return cls(Database.open(settings, clock=clock, migrate=migrate, read_only=read_only))

    def close(self) -> None:
        self.database.close()

    # --- the database ------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def clock(self) -> datetime:
        return self.database.clock()

    def upgrade(self) -> str:
        return self.database.upgrade()

    # --- bounces, checks and admin actions ---------------------------------------------

    def record(self, rows: Sequence[Incoming]) -> list[Recorded]:
        return self.suppression.record(rows)

    def lookup(self, addresses: Sequence[str]) -> dict[str, tuple[bool, str, str]]:
        return self.suppression.lookup(addresses)

    def details(self, addresses: Sequence[str]) -> dict[str, Details]:
        return self.suppression.details(addresses)

    def administer(
        self, addresses: Sequence[str], action: Action, actor: str, *, note: str = ""
    ) -> tuple[list[str], list[str]]:
        return self.suppression.administer(addresses, action, actor, note=note)

    def delete(self, addresses: Sequence[str], actor: str) -> tuple[list[str], list[str]]:
        return self.suppression.delete(addresses, actor)

    def allow(self, entries: Sequence[str], actor: str, *, remove: bool = False) -> list[str]:
        return self.suppression.allow(entries, actor, remove=remove)

    def allow_entries(self) -> list[dict[str, Any]]:
        return self.suppression.allow_entries()

    # --- selections --------------------------------------------------------------------

    def select_add(self, name: str, addresses: Sequence[str], actor: str) -> int:
        return self.selections.add(name, addresses, actor)

    def select_where(self, name: str, filters: Filters, actor: str) -> int:
        return self.selections.add_where(name, filters, actor)

    def select_remove(self, name: str, addresses: Sequence[str], actor: str) -> int:
        return self.selections.remove(name, addresses, actor)

    def require_selection(self, name: str) -> None:
        self.selections.require(name)

    # --- reading -----------------------------------------------------------------------

    def rows(
        self, filters: Filters = NO_FILTERS, *, after: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        return self.reports.rows(filters, after=after, limit=limit)

    def show(self, address: str) -> dict[str, Any] | None:
        return self.reports.show(address)

    def stats(self, days: int = 30) -> dict[str, list[tuple[str, int]]]:
        return self.reports.stats(days)

    def deliverability(self, since: datetime | None = None) -> list[dict[str, Any]]:
        return self.reports.deliverability(since)

    def apply_policy(self, *, dry_run: bool) -> Iterator[Change]:
        return self.replay.apply_policy(dry_run=dry_run)

    def prune(self, *, dry_run: bool = False, max_batches: int | None = None) -> Pruned:
        return self.retention.prune(dry_run=dry_run, max_batches=max_batches)
