"""Shared fixtures: a fresh store database on SQLite and on PostgreSQL; a TLS certificate.

Any test that takes `database_url` runs once per database. PostgreSQL comes
from BOUNCED_TEST_DATABASE_URL, else the default postgresql://postgres@127.0.0.1:5432/test
when a server answers there (so the README's test command and CI test the same);
each test gets its own schema, dropped afterwards, so tests never see each
other's rows. When no server answers, the PostgreSQL runs are skipped, saying why.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers.certs import self_signed
from helpers.postgres import pg_schema_url, postgres_base

import bounced


def pytest_sessionstart(session):
    """Refuse to test compiled parser modules (setup.py: mypyc) that are older than
    their source: Python imports the extension before the `.py`, so an edit would
    go untested until the package is built again."""
    stale = [
        so.relative_to(Path(bounced.__file__).parent.parent)
        for so in Path(bounced.__file__).parent.rglob("*.so")
        if (py := so.with_name(so.name.partition(".")[0] + ".py")).exists()
        and py.stat().st_mtime > so.stat().st_mtime
    ]
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(map(str, stale))}; build"
            " again with `pip install -e .`, or delete them (bounced/dsn/*.so and"
            " bounced_dsn__mypyc*.so) to test the source",
            returncode=2,
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A URL to an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bounced.db'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def postgres_url():
    """A URL to an empty PostgreSQL schema, for what only PostgreSQL has (partitions)."""
    yield from _postgres_schema()


def _postgres_schema():
    base, why = postgres_base()
    if not base:
        pytest.skip(why)
    psycopg = pytest.importorskip("psycopg")
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, and its key, as PEM files (a TLS relay
    in the dispatch tests, the listener's STARTTLS)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(
        key,
        "relay.test",
        extensions=[
            (
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            ),
            (x509.BasicConstraints(ca=True, path_length=None), True),
        ],
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
