"""The inbox's rows: messages to a return path kept aside (see `bounced.listener.inbox`).

One row per spooled message (unique `spool_id`), so a message handed over twice
(a listener that died before cleaning up its spool) is kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from bounced.db.database import Database
from bounced.db.tables import inbox_table

__all__ = ["INBOX_COLUMNS", "InboxRepository"]

#: Columns of `bounced inbox list`.
INBOX_COLUMNS = ("id", "received_at", "mail_from", "rcpt_tos", "subject", "reason", "assigned_to")
_inbox = inbox_table.c


class InboxRepository:
    """The inbox table of one `Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, values: dict[str, Any]) -> bool:
        """Keep one message; False when this spooled message is already here."""
        stmt = self.database.insert(inbox_table).values(values).on_conflict_do_nothing()
        return bool(self.database.write(lambda conn: conn.execute(stmt).rowcount) == 1)

    def rows(self, *, assigned: bool = False) -> list[dict[str, Any]]:
        """Messages waiting (or, with `assigned`, all of them), oldest first."""
        query = select(*(_inbox[name] for name in INBOX_COLUMNS))
        query = query.order_by(_inbox.received_at, _inbox.id)
        if not assigned:
            query = query.where(_inbox.assigned_to == "")
        with self.database.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def get(self, message_id: int) -> dict[str, Any] | None:
        """One message with its bytes; None when there is none with this id."""
        with self.database.read() as conn:
            row = conn.execute(select(inbox_table).where(_inbox.id == message_id)).first()
        return None if row is None else dict(row._mapping)

    def assigned(self, message_id: int, address: str, at: datetime) -> None:
        """Mark a message as assigned to `address`."""
        stmt = (
            update(inbox_table)
            .where(_inbox.id == message_id)
            .values(assigned_to=address, assigned_at=at)
        )
        self.database.write(lambda conn: conn.execute(stmt))

    def delete(self, message_ids: Sequence[int]) -> list[int]:
        """Erase messages; returns the ids that were there."""
        stmt = delete(inbox_table).where(_inbox.id.in_(list(message_ids))).returning(_inbox.id)
        return sorted(self.database.write(lambda conn: list(conn.scalars(stmt))))
