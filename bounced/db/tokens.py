"""API tokens: created, listed and revoked by `bounced token`, verified by the HTTP API.

A token reads `bnc_<key id>_<secret>`. The key id finds the row; the secret is kept
only as its SHA-256 and compared with `hmac.compare_digest`, so a stolen database
gives no usable token and the comparison takes the same time whatever it holds.
The secret has 256 random bits: a plain hash is enough (no password stretching).

Scopes: `check` (verdicts), `read` (lists, history, stats), `ingest` (bounces, sent
messages, retries), `admin` (changes to the list; implies the others).

The table's SQL lives here, with the scopes a token carries; the HTTP API's auth
(bounced.http.auth) and `bounced token` (bounced.cli.tokens) both use it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from bounced.db.tables import token_table
from bounced.errors import BouncedError, UnknownToken

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bounced.db.store import Store

__all__ = ["PREFIX", "Principal", "Scope", "Tokens"]

PREFIX = "bnc_"
_tokens = token_table


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
        self.database = store.database

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
            "created_at": self.database.clock(),
        }

        def work(conn: Any) -> int:
            taken = conn.execute(
                select(_tokens.c.id).where(_tokens.c.name == values["name"])
            ).first()
            if taken is not None:
                raise BouncedError(f"a token named {values['name']!r} exists (revoke it first)")
            return int(conn.execute(_tokens.insert().values(values)).rowcount)

        self.database.write(work)
        return f"{PREFIX}{key_id}_{secret}"

    def verify(self, token: str) -> Principal | None:
        """The principal of a live token, or None (unknown, revoked or wrong secret)."""
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self.database.read() as conn:
            row = conn.execute(
                select(
                    _tokens.c.name, _tokens.c.secret_hash, _tokens.c.scopes, _tokens.c.revoked_at
                ).where(_tokens.c.key_id == key_id)
            ).first()
        expected = row.secret_hash if row is not None else _digest("")
        matches = hmac.compare_digest(_digest(secret), expected)
        if row is None or not matches or row.revoked_at is not None:
            return None
        return Principal(row.name, frozenset(Scope(s) for s in row.scopes.split(",")))

    def list(self) -> list[dict[str, Any]]:
        """Every token (never its secret), oldest first."""
        query = select(
            _tokens.c.name,
            _tokens.c.key_id,
            _tokens.c.scopes,
            _tokens.c.created_at,
            _tokens.c.revoked_at,
        )
        with self.database.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(_tokens.c.id))]

    def revoke(self, name: str) -> None:
        """Revoke a live token by name; its row stays (who had what, and when)."""
        now = self.database.clock()
        stmt = (
            update(_tokens)
            .where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, name=_tokens.c.name + "#revoked:" + _tokens.c.key_id)
        )
        if self.database.write(lambda conn: conn.execute(stmt).rowcount) == 0:
            raise UnknownToken(f"no live token named {name!r}")
