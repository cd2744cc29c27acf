"""The sending log and retry plans: sent messages, plans, dispatches, the event cursor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status IN ('scheduled', 'awaiting')")
SENT = sa.text("outcome = 'sent'")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "sent_message",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("sent_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address", "message_key", name="uq_sent_message"),
    )
    op.create_index("ix_sent_message_address", "sent_message", ["address"])
    op.create_index("ix_sent_message_status", "sent_message", ["status"])
    op.create_index("ix_sent_message_sent_at", "sent_message", ["sent_at"])
    op.create_table(
        "retry_plan",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("sent_id", BIG_ID, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("due_at", TIME, nullable=True),
        sa.Column("last_attempt_at", TIME, nullable=True),
        sa.Column("dispatch_failures", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=False),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("escalated_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["sent_id"], ["sent_message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_retry_plan_address", "retry_plan", ["address"])
    op.create_index("ix_retry_plan_due", "retry_plan", ["status", "due_at"])
    op.create_index("ix_retry_plan_sent_id", "retry_plan", ["sent_id"])
    op.create_index(
        "uq_retry_plan_open",
        "retry_plan",
        ["sent_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "retry_dispatch",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["retry_plan.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_retry_dispatch_plan_id", "retry_dispatch", ["plan_id"])
    op.create_index(
        "uq_retry_dispatch_sent",
        "retry_dispatch",
        ["plan_id", "attempt"],
        unique=True,
        sqlite_where=SENT,
        postgresql_where=SENT,
    )
    op.create_table(
        "event_cursor",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("event_cursor")
    op.drop_index("uq_retry_dispatch_sent", table_name="retry_dispatch")
    op.drop_index("ix_retry_dispatch_plan_id", table_name="retry_dispatch")
    op.drop_table("retry_dispatch")
    op.drop_index("uq_retry_plan_open", table_name="retry_plan")
    op.drop_index("ix_retry_plan_sent_id", table_name="retry_plan")
    op.drop_index("ix_retry_plan_due", table_name="retry_plan")
    op.drop_index("ix_retry_plan_address", table_name="retry_plan")
    op.drop_table("retry_plan")
    op.drop_index("ix_sent_message_sent_at", table_name="sent_message")
    op.drop_index("ix_sent_message_status", table_name="sent_message")
    op.drop_index("ix_sent_message_address", table_name="sent_message")
    op.drop_table("sent_message")
