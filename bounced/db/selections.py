"""Selections: named sets of addresses (a project, a campaign's list) and their members.

Adding an address that was never seen creates it (active), so a selection can be
checked and exported before any of its addresses bounced. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, literal, select

from bounced.db.database import CHUNK, batched
from bounced.db.filters import Filters, describe, filtered
from bounced.db.suppression import SuppressionRepository
from bounced.db.tables import address_table, member_table, selection_table
from bounced.errors import UnknownSelection

__all__ = ["SelectionRepository", "selection_id"]


def selection_id(conn: Connection, name: str) -> int:
    """The id of the selection `name`, or UnknownSelection."""
    found = conn.scalar(select(selection_table.c.id).where(selection_table.c.name == name))
    if found is None:
        raise UnknownSelection(name)
    return int(found)


class SelectionRepository:
    """Selections and their members, on the addresses of a `SuppressionRepository`."""

    def __init__(self, suppression: SuppressionRepository) -> None:
        self.suppression = suppression
        self.database = suppression.database

    def _created(self, conn: Connection, name: str) -> int:
        """The id of the selection `name`, created when new."""
        stmt = self.database.insert(selection_table).values(
            name=name, created_at=self.database.clock()
        )
        conn.execute(stmt.on_conflict_do_nothing())
        return selection_id(conn, name)

    def add(self, name: str, addresses: Sequence[str], actor: str) -> int:
        """Add addresses to a selection (created if new); unknown addresses are created."""
        added = 0
        for chunk in batched(dict.fromkeys(addresses), CHUNK):

            def work(conn: Connection, chunk: list[str] = chunk) -> int:
                sid = self._created(conn, name)
                self.suppression.ensure(conn, chunk, self.database.clock())
                ids = conn.scalars(
                    select(address_table.c.id).where(address_table.c.address.in_(chunk))
                )
                rows = [{"selection_id": sid, "address_id": i} for i in ids]
                stmt = self.database.insert(member_table).values(rows).on_conflict_do_nothing()
                added_rows = conn.execute(stmt.returning(member_table.c.address_id)).all()
                self.suppression.audit(conn, "selection_add", chunk, actor, name)
                return len(added_rows)

            added += self.database.write(work)
        return added

    def add_where(self, name: str, filters: Filters, actor: str) -> int:
        """Add every address matching `filters` to a selection, in one statement."""
        members = member_table.c

        def work(conn: Connection) -> int:
            sid = self._created(conn, name)
            matching = filtered(select(literal(sid), address_table.c.id), filters).where(
                ~address_table.c.id.in_(
                    select(members.address_id).where(members.selection_id == sid)
                )
            )
            stmt = member_table.insert().from_select(["selection_id", "address_id"], matching)
            # Counted from RETURNING: SQLAlchemy reports no rowcount for INSERT on psycopg.
            added = len(conn.execute(stmt.returning(members.address_id)).all())
            detail = f"{name}: {describe(filters)}"
            self.suppression.audit(conn, "selection_add", [""], actor, detail)
            return added

        return self.database.write(work)

    def remove(self, name: str, addresses: Sequence[str], actor: str) -> int:
        """Take addresses out of a selection; returns how many were in it."""
        members = member_table.c

        def work(conn: Connection) -> int:
            sid = selection_id(conn, name)
            removed = 0
            for chunk in batched(dict.fromkeys(addresses), CHUNK):
                ids = select(address_table.c.id).where(address_table.c.address.in_(chunk))
                stmt = delete(member_table).where(
                    members.selection_id == sid, members.address_id.in_(ids)
                )
                removed += conn.execute(stmt).rowcount
                self.suppression.audit(conn, "selection_remove", chunk, actor, name)
            return removed

        return self.database.write(work)

    def counts(self) -> list[dict[str, Any]]:
        """Every selection with its member count, by name."""
        selections = selection_table.c
        count = func.count(member_table.c.address_id)
        query = (
            select(selections.name, selections.created_at, count.label("members"))
            .select_from(
                selection_table.outerjoin(
                    member_table, member_table.c.selection_id == selections.id
                )
            )
            .group_by(selections.id, selections.name, selections.created_at)
            .order_by(selections.name)
        )
        with self.database.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def require(self, name: str) -> None:
        """UnknownSelection unless the selection `name` exists."""
        with self.database.read() as conn:
            selection_id(conn, name)
