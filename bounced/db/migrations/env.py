"""Alembic environment: migrations always run on a connection the store hands over.

`bounced db upgrade` and the automatic upgrade of an empty database both go
through `bounced.db.database`, which opens the connection (with the same SQLite
pragmas and PostgreSQL settings as every other use) and passes it in
`config.attributes["connection"]`. There is no alembic.ini and no URL here.
"""

from alembic import context

from bounced.db.partitions import compared
from bounced.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    include_object=compared(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
