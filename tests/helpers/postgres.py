"""The PostgreSQL server the tests use, when one answers (see conftest.database_url)."""

from __future__ import annotations

import functools
import os

from sqlalchemy.engine import make_url

__all__ = ["PG_DEFAULT", "PG_ENV", "pg_schema_url", "postgres_base"]

PG_ENV = "BOUNCED_TEST_DATABASE_URL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def postgres_base() -> tuple[str | None, str]:
    """The PostgreSQL URL to test against, or None and why there is none."""
    base = os.environ.get(PG_ENV)
    if base:
        return base, ""
    try:
        import psycopg

        with psycopg.connect(PG_DEFAULT, connect_timeout=2):
            return PG_DEFAULT, ""
    except Exception as exc:  # any failure means: no server to test against
        return None, f"{PG_ENV} is not set and no PostgreSQL answers at {PG_DEFAULT} ({exc})"


def pg_schema_url(base: str, schema: str) -> str:
    """`base` with its search path set to `schema`: a database of its own per test."""
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)
