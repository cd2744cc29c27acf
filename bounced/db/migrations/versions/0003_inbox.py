"""The unassigned inbox: messages to a return path that are not bounces.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "inbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("spool_id", sa.Text(), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_tos", sa.Text(), nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("assigned_to", sa.Text(), nullable=False),
        sa.Column("assigned_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("spool_id", name="uq_inbox_spool_id"),
    )
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_inbox_received_at", table_name="inbox")
    op.drop_table("inbox")
