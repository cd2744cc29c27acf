"""PostgreSQL: the event table partitioned by month, its unique keys on `event_key`.

A prune then drops the months past the horizon whole instead of deleting their rows
one by one (bounced.db.partitions says why and how). The existing table is renamed
aside; the partitioned `event` is made with the same columns (LIKE: same order, same
defaults, the same id sequence), one partition per month its rows span and a default
partition; the rows are copied in, and so are their keys into `event_key`, before
any index is built (building once is cheaper than updating row by row). Then the
indexes, the triggers that keep `event_key`, and the old table dropped. The primary
key becomes (id, received_at): ids still come from one sequence.

Takes about what copying the table takes, under the migration's lock: run
`bounced db upgrade` with the listeners and workers stopped. SQLite: nothing to do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from bounced.db.partitions import DEFAULT_PARTITION, Month, ensure, months

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "event_unpartitioned"
KEY = "address_id, message_key, kind, status, notice"
BY_MONTH = "PARTITION BY RANGE (received_at)"
RETURN_KEY = "(address_id, message_key) WHERE counts"
ADDRESS_FK = "FOREIGN KEY (address_id) REFERENCES address (id) ON DELETE CASCADE"

#: The triggers that keep `event_key`: statement triggers, so a COPY or an INSERT of
#: a batch writes its keys in one statement, and a repeated key fails that statement.
TRIGGERS = f"""
CREATE FUNCTION event_key_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_key ({KEY}, counts, received_at)
    SELECT {KEY}, counts, received_at FROM added;
    RETURN NULL;
END $$;
CREATE TRIGGER event_key_add AFTER INSERT ON event
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION event_key_add();
CREATE FUNCTION event_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_key k SET counts = n.counts
    FROM changed n
    WHERE k.address_id = n.address_id AND k.message_key = n.message_key
        AND k.kind = n.kind AND k.status = n.status AND k.notice = n.notice
        AND k.counts <> n.counts;
    RETURN NULL;
END $$;
CREATE TRIGGER event_key_counts AFTER UPDATE ON event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION event_key_counts();
"""


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    conn = op.get_bind()
    first, last = conn.exec_driver_sql("SELECT min(received_at), max(received_at) FROM event").one()
    op.execute(f"ALTER TABLE event RENAME TO {OLD}")
    for name in ("uq_event_return", "ix_event_received_at"):
        op.execute(f"DROP INDEX {name}")
    op.execute(f"ALTER TABLE {OLD} DROP CONSTRAINT uq_event_notice")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT event_pkey TO {OLD}_pkey")
    op.execute(f"CREATE TABLE event (LIKE {OLD} INCLUDING DEFAULTS) {BY_MONTH}")
    op.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF event DEFAULT")
    if first is not None:
        ensure(conn, months(Month.of(first), Month.of(last)))
    op.execute(
        "CREATE TABLE event_key (address_id integer NOT NULL, message_key text NOT NULL,"
        " kind text NOT NULL, status text NOT NULL, notice text NOT NULL,"
        " counts boolean NOT NULL, received_at timestamptz NOT NULL)"
    )
    op.execute(f"INSERT INTO event SELECT * FROM {OLD}")
    op.execute(f"INSERT INTO event_key SELECT {KEY}, counts, received_at FROM {OLD}")
    op.execute("ALTER SEQUENCE event_id_seq OWNED BY event.id")
    op.execute(f"DROP TABLE {OLD}")
    op.execute("ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id, received_at)")
    op.execute(f"ALTER TABLE event ADD CONSTRAINT event_address_id_fkey {ADDRESS_FK}")
    op.execute("CREATE INDEX ix_event_received_at ON event (received_at)")
    op.execute("CREATE INDEX ix_event_address ON event (address_id, received_at)")
    op.execute(f"ALTER TABLE event_key ADD CONSTRAINT uq_event_notice UNIQUE ({KEY})")
    op.execute(f"ALTER TABLE event_key ADD CONSTRAINT event_key_address_id_fkey {ADDRESS_FK}")
    op.execute(f"CREATE UNIQUE INDEX uq_event_return ON event_key {RETURN_KEY}")
    op.execute("CREATE INDEX ix_event_key_received_at ON event_key (received_at)")
    op.execute(TRIGGERS)
    # Autovacuum analyses the partitions, never the partitioned table itself.
    op.execute("ANALYZE event")
    op.execute("ANALYZE event_key")


def downgrade() -> None:
    """Downgrade schema: one table again, the keys back on it."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE {OLD} (LIKE event INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {OLD} SELECT * FROM event")
    op.execute(f"ALTER SEQUENCE event_id_seq OWNED BY {OLD}.id")
    op.execute("DROP TABLE event")  # and its partitions and triggers
    op.execute("DROP TABLE event_key")
    op.execute("DROP FUNCTION event_key_add()")
    op.execute("DROP FUNCTION event_key_counts()")
    op.execute(f"ALTER TABLE {OLD} RENAME TO event")
    op.execute("ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id)")
    op.execute(f"ALTER TABLE event ADD CONSTRAINT event_address_id_fkey {ADDRESS_FK}")
    op.execute(f"ALTER TABLE event ADD CONSTRAINT uq_event_notice UNIQUE ({KEY})")
    op.execute(f"CREATE UNIQUE INDEX uq_event_return ON event {RETURN_KEY}")
    op.execute("CREATE INDEX ix_event_received_at ON event (received_at)")
