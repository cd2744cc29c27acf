"""Events keyed by the notice they came from: a resend bouncing again is recorded.

Until now one event per (address, original message, kind, status): a resend that
bounced with the same status as the first send was refused as a duplicate, so its
retry plan never heard of it. The notice's identity (its Message-ID, else a digest)
joins the key; returns are still counted once per original message (uq_event_return).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = sa.text("counts")
OLD = ("address_id", "message_key", "kind", "status")


def _rebuild(drop: str, create: str, columns: Sequence[str], *, add: bool) -> None:
    """Swap the unique key. SQLite cannot alter a table constraint, so batch mode copies
    the table there; its indexes are dropped first and made again after, so the partial
    index keeps its WHERE clause whatever the reflection of SQLite indexes preserves."""
    op.drop_index("uq_event_return", table_name="event", sqlite_where=COUNTED)
    op.drop_index("ix_event_received_at", table_name="event")
    with op.batch_alter_table("event") as batch:
        if add:
            batch.add_column(sa.Column("notice", sa.Text(), nullable=False, server_default=""))
        batch.drop_constraint(drop, type_="unique")
        batch.create_unique_constraint(create, list(columns))
        if not add:
            batch.drop_column("notice")
    op.create_index("ix_event_received_at", "event", ["received_at"], unique=False)
    op.create_index(
        "uq_event_return",
        "event",
        ["address_id", "message_key"],
        unique=True,
        sqlite_where=COUNTED,
        postgresql_where=COUNTED,
    )


def upgrade() -> None:
    """Upgrade schema."""
    _rebuild("uq_event", "uq_event_notice", (*OLD, "notice"), add=True)


def downgrade() -> None:
    """Downgrade schema (events that differ only in their notice must be removed first)."""
    _rebuild("uq_event_notice", "uq_event", OLD, add=False)
