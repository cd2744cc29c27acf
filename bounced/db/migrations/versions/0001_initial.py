"""The initial schema: addresses, events, selections, allow-list, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTED = sa.text("counts")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "address",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("auto_reason", sa.Text(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("former_employee", sa.Boolean(), nullable=False),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("first_return_at", TIME, nullable=True),
        sa.Column("last_return_at", TIME, nullable=True),
        sa.Column("blocked_at", TIME, nullable=True),
        sa.Column("counted_since", TIME, nullable=True),
        sa.Column("last_reason", sa.Text(), nullable=False),
        sa.Column("last_status", sa.Text(), nullable=False),
        sa.Column("last_class", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    op.create_index(op.f("ix_address_blocked_reason"), "address", ["blocked_reason"], unique=False)
    op.create_index(op.f("ix_address_domain"), "address", ["domain"], unique=False)
    op.create_index(op.f("ix_address_state"), "address", ["state"], unique=False)
    op.create_table(
        "allow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry"),
    )
    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_address"), "audit", ["address"], unique=False)
    op.create_index(op.f("ix_audit_at"), "audit", ["at"], unique=False)
    op.create_table(
        "selection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "event",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("bounce_class", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reply_code", sa.Text(), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("remote_mta", sa.Text(), nullable=False),
        sa.Column("reporting_mta", sa.Text(), nullable=False),
        sa.Column("original_message_id", sa.Text(), nullable=False),
        sa.Column("feedback_type", sa.Text(), nullable=False),
        sa.Column("detector", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("counts", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["address_id"], ["address.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_id", "message_key", "kind", "status", name="uq_event"),
    )
    op.create_index(op.f("ix_event_received_at"), "event", ["received_at"], unique=False)
    op.create_index(
        "uq_event_return",
        "event",
        ["address_id", "message_key"],
        unique=True,
        sqlite_where=COUNTED,
        postgresql_where=COUNTED,
    )
    op.create_table(
        "selection_member",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["address_id"], ["address.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["selection_id"], ["selection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("selection_id", "address_id"),
    )
    op.create_index(
        op.f("ix_selection_member_address_id"), "selection_member", ["address_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_selection_member_address_id"), table_name="selection_member")
    op.drop_table("selection_member")
    op.drop_index(
        "uq_event_return", table_name="event", sqlite_where=COUNTED, postgresql_where=COUNTED
    )
    op.drop_index(op.f("ix_event_received_at"), table_name="event")
    op.drop_table("event")
    op.drop_table("selection")
    op.drop_index(op.f("ix_audit_at"), table_name="audit")
    op.drop_index(op.f("ix_audit_address"), table_name="audit")
    op.drop_table("audit")
    op.drop_table("allow")
    op.drop_index(op.f("ix_address_state"), table_name="address")
    op.drop_index(op.f("ix_address_domain"), table_name="address")
    op.drop_index(op.f("ix_address_blocked_reason"), table_name="address")
    op.drop_table("address")
