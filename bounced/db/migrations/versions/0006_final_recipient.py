"""Events name the address a notice was last handed to, beside the one mailed.

An alias or a forward makes a DSN's Final-Recipient another address than the
Original-Recipient the sender mailed; the event's address is the mailed one (the
suppression list's), and `final_recipient` keeps the other ("" when the same).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "event", sa.Column("final_recipient", sa.Text(), nullable=False, server_default="")
    )


def downgrade() -> None:
    """Downgrade schema."""
    # SQLite has dropped columns in place since 3.35: no copy of the table.
    op.drop_column("event", "final_recipient")
