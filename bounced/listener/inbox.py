"""The unassigned inbox: mail to a return path that is no bounce, complaint or auto-reply.

People answer return paths ("please take me off", "she left the company"), and
some bounces cannot be read at all. Such messages are neither lost nor counted:
the listener keeps them here with their envelope and the reason, and an admin
lists, reads, assigns (`assign --to ADDR` records the message as a failed
delivery to ADDR, through the policy like any bounce) or deletes them.

One row per spooled message (unique `spool_id`), so a message handed over twice
(a listener that died before cleaning up its spool) is kept once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from bounced.db.tables import InboxMessage
from bounced.dsn import parse
from bounced.errors import UnknownMessage
from bounced.listener.spool import Envelope

if TYPE_CHECKING:
    from bounced.suppressions import Ingested, Suppressions

__all__ = ["INBOX_COLUMNS", "Inbox"]

#: Columns of `bounced inbox list`.
INBOX_COLUMNS = ("id", "received_at", "mail_from", "rcpt_tos", "subject", "reason", "assigned_to")


T = InboxMessage.__table__  # type: ignore[attr-defined]
_LISTED = [T.c[name] for name in INBOX_COLUMNS]


class Inbox:
    """The inbox of one store."""

    def __init__(self, sup: Suppressions) -> None:
        self.sup = sup
        self.store = sup.store

    def add(
        self, spool_id: str, envelope: Envelope, raw: bytes, *, subject: str, reason: str
    ) -> bool:
        """Keep one message; False when this spooled message is already here."""
        values = {
            "spool_id": spool_id,
            "mail_from": envelope.mail_from,
            "rcpt_tos": ", ".join(envelope.rcpt_tos),
            "client": envelope.client,
            "subject": subject,
            "reason": reason,
            "raw": raw,
            "received_at": envelope.received_at or self.store.clock(),
            "assigned_to": "",
        }
        stmt = self.store.insert(T).values(values).on_conflict_do_nothing()
        return self.store.write(lambda conn: conn.execute(stmt).rowcount) == 1

    def list(self, *, assigned: bool = False) -> list[dict[str, Any]]:
        """Messages waiting (or, with `assigned`, all of them), oldest first."""
        query = select(*_LISTED).order_by(T.c.received_at, T.c.id)
        if not assigned:
            query = query.where(T.c.assigned_to == "")
        with self.store.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def get(self, message_id: int) -> dict[str, Any]:
        """One message with its bytes, or UnknownMessage."""
        with self.store.read() as conn:
            row = conn.execute(select(T).where(T.c.id == message_id)).first()
        if row is None:
            raise UnknownMessage(f"no inbox message {message_id}")
        return dict(row._mapping)

    def assign(self, message_id: int, address: str) -> Ingested:
        """Record the message as a failed delivery to `address` and mark it assigned."""
        from bounced.listener.intake import with_recipient

        normal = self.sup.normalize(address)
        row = self.get(message_id)
        report = with_recipient(parse(row["raw"]), normal, "", detector="inbox")
        (result,) = self.sup.ingest_reports([(f"inbox:{message_id}", row["raw"], report)])
        stmt = (
            update(T)
            .where(T.c.id == message_id)
            .values(assigned_to=normal, assigned_at=self.store.clock())
        )
        self.store.write(lambda conn: conn.execute(stmt))
        return result

    def delete(self, message_ids: Iterable[int]) -> list[int]:
        """Erase messages; returns the ids that were there."""
        ids = list(message_ids)
        stmt = delete(T).where(T.c.id.in_(ids)).returning(T.c.id)
        return sorted(self.store.write(lambda conn: list(conn.scalars(stmt))))
