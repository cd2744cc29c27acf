"""API tokens: created, listed and revoked by `bounced token`, verified by the HTTP API.

A token reads `bnc_<key id>_<secret>`. The key id finds the row; the secret is kept
only as its SHA-256 and compared with `hmac.compare_digest`, so a stolen database
gives no usable token and the comparison takes the same time whatever it holds.
The secret has 256 random bits: a plain hash is enough (no password stretching).

Scopes: `check` (verdicts), `read` (lists, history, stats), `ingest` (bounces, sent
messages, retries), `admin` (changes to the list; implies the others).

No FastAPI here: the CLI imports this module too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from bounced.db.tables import ApiToken
from bounced.errors import BouncedError, UnknownToken

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bounced.db.store import Store

__all__ = ["PREFIX", "Principal", "Scope", "Tokens"]

PREFIX = "bnc_"
T = ApiToken.__table__  # type: ignore[attr-defined]


class Scope(StrEnum):
    """What a token may do."""

    CHECK = "check"
    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name (the audit log's actor) and its scopes."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    return (key_id, secret) if sep and key_id and secret else None


class Tokens:
    """The api_token table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, name: str, scopes: Iterable[Scope]) -> str:
        """A new token; the returned text is the only copy of its secret."""
        chosen = sorted({Scope(s) for s in scopes})
        if not name.strip():
            raise BouncedError("a token needs a name")
        if not chosen:
            raise BouncedError("a token needs at least one scope")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
        values = {
            "name": name.strip(),
            "key_id": key_id,
            "secret_hash": _digest(secret),
            "scopes": ",".join(chosen),
            "created_at": self.store.clock(),
        }

        def work(conn: Any) -> int:
            taken = conn.execute(select(T.c.id).where(T.c.name == values["name"])).first()
            if taken is not None:
                raise BouncedError(f"a token named {values['name']!r} exists (revoke it first)")
            return conn.execute(T.insert().values(values)).rowcount

        self.store.write(work)
        return f"{PREFIX}{key_id}_{secret}"

    def verify(self, token: str) -> Principal | None:
        """The principal of a live token, or None (unknown, revoked or wrong secret)."""
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self.store.read() as conn:
            row = conn.execute(
                select(T.c.name, T.c.secret_hash, T.c.scopes, T.c.revoked_at).where(
                    T.c.key_id == key_id
                )
            ).first()
        expected = row.secret_hash if row is not None else _digest("")
        matches = hmac.compare_digest(_digest(secret), expected)
        if row is None or not matches or row.revoked_at is not None:
            return None
        return Principal(row.name, frozenset(Scope(s) for s in row.scopes.split(",")))

    def list(self) -> list[dict[str, Any]]:
        """Every token (never its secret), oldest first."""
        query = select(T.c.name, T.c.key_id, T.c.scopes, T.c.created_at, T.c.revoked_at)
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(T.c.id))]

    def revoke(self, name: str) -> None:
        """Revoke a live token by name; its row stays (who had what, and when)."""
        now = self.store.clock()
        stmt = (
            update(T)
            .where(T.c.name == name, T.c.revoked_at.is_(None))
            .values(revoked_at=now, name=T.c.name + "#revoked:" + T.c.key_id)
        )
        if self.store.write(lambda conn: conn.execute(stmt).rowcount) == 0:
            raise UnknownToken(f"no live token named {name!r}")
