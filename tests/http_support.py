"""What the HTTP API tests share: the app on a test database, with one token per scope.

api = Api.start(database_url)
api.client.get("/v1/suppressions/a@example.com", headers=api.auth("check"))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from bounced.config import Settings, load_settings
from bounced.http.app import create_app
from bounced.http.tokens import Scope, Tokens
from bounced.suppressions import Suppressions

SCOPES = tuple(Scope)


@dataclass
class Api:
    """An app over a fresh store, its TestClient (httpx), and a token per scope."""

    settings: Settings
    client: TestClient
    sup: Suppressions
    tokens: dict[str, str]

    @classmethod
    def start(cls, database_url: str, **overrides: Any) -> Api:
        settings = load_settings(overrides={"database_url": database_url, **overrides})
        app = create_app(settings)
        store = app.state.store
        tokens = {s.value: Tokens(store).create(f"{s}-token", [s]) for s in SCOPES}
        client = TestClient(app, raise_server_exceptions=False)
        return cls(settings, client, Suppressions(store, settings, "test"), tokens)

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def close(self) -> None:
        self.client.close()
        self.sup.close()
