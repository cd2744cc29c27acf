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

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bounced.db.inbox import INBOX_COLUMNS
from bounced.dsn import parse
from bounced.errors import UnknownMessage
from bounced.listener.intake import with_recipient
from bounced.listener.spool import Envelope

if TYPE_CHECKING:
    from bounced.suppressions import Ingested, Suppressions

__all__ = ["INBOX_COLUMNS", "Inbox"]


class Inbox:
    """The inbox of one store."""

    def __init__(self, sup: Suppressions) -> None:
        self.sup = sup
        self.rows = sup.store.inbox
        self.clock = sup.store.database.clock

    def add(
        self, spool_id: str, envelope: Envelope, raw: bytes, *, subject: str, reason: str
    ) -> bool:
        """Keep one message; False when this spooled message is already here."""
        return self.rows.add(
            {
                "spool_id": spool_id,
                "mail_from": envelope.mail_from,
                "rcpt_tos": ", ".join(envelope.rcpt_tos),
                "client": envelope.client,
                "subject": subject,
                "reason": reason,
                "raw": raw,
                "received_at": envelope.received_at or self.clock(),
                "assigned_to": "",
            }
        )

    def list(self, *, assigned: bool = False) -> builtins.list[dict[str, Any]]:
        """Messages waiting (or, with `assigned`, all of them), oldest first."""
        return self.rows.rows(assigned=assigned)

    def get(self, message_id: int) -> dict[str, Any]:
        """One message with its bytes, or UnknownMessage."""
        found = self.rows.get(message_id)
        if found is None:
            raise UnknownMessage(f"no inbox message {message_id}")
        return found

    def assign(self, message_id: int, address: str) -> Ingested:
        """Record the message as a failed delivery to `address` and mark it assigned."""
        normal = self.sup.normalize(address)
        row = self.get(message_id)
        report = with_recipient(parse(row["raw"]), normal, "", detector="inbox")
        (result,) = self.sup.ingest_reports([(f"inbox:{message_id}", row["raw"], report)])
        self.rows.assigned(message_id, normal, self.clock())
        return result

    def delete(self, message_ids: Iterable[int]) -> builtins.list[int]:
        """Erase messages; returns the ids that were there."""
        return self.rows.delete(list(message_ids))
