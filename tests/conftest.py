"""Shared fixtures: a fresh store database on SQLite and on PostgreSQL.

Any test that takes `database_url` runs once per database. PostgreSQL comes
from BOUNCED_TEST_DATABASE_URL (CI sets postgresql://postgres@127.0.0.1:5432/test);
each test gets its own schema, dropped afterwards, so tests never see each
other's rows. Without the variable the PostgreSQL runs are skipped, saying why.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy.engine import make_url

PG_ENV = "BOUNCED_TEST_DATABASE_URL"


def _pg_schema_url(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A URL to an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bounced.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL to test against")
    psycopg = pytest.importorskip("psycopg")
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
