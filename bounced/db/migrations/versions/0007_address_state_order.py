"""The address rows by state in address order: `list --status blocked` pages without
sorting every blocked address (SQLite sorted 200 000 of a million for each page).

Touches only the address table's indexes: ix_address_state (state) becomes
ix_address_state_address (state, address), which also serves every lookup by state.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_address_state_address", "address", ["state", "address"])
    op.drop_index("ix_address_state", table_name="address")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index("ix_address_state", "address", ["state"])
    op.drop_index("ix_address_state_address", table_name="address")
