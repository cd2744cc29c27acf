"""`bounced token create|list|revoke`: the HTTP API's bearer tokens (bounced.http.tokens).

`create` prints the token alone on stdout, once: only its hash is stored.
"""

import sys
from typing import Annotated

import typer

from bounced.cli.support import FormatOption, print_rows, suppressions

__all__ = ["register", "token_app"]

token_app = typer.Typer(help="Bearer tokens of the HTTP API (`bounced api`).")
TOKEN_COLUMNS = ("name", "key_id", "scopes", "created_at", "revoked_at")
SCOPES = ("check", "read", "ingest", "admin")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who uses it (the audit log's actor).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"One of {', '.join(SCOPES)} (repeatable; admin = all)."),
    ],
) -> None:
    """Create a token and print it (the only time it is shown)."""
    from bounced.http.tokens import Scope, Tokens

    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope {unknown[0]!r}; one of {', '.join(SCOPES)}")
    with suppressions(ctx) as sup:
        token = Tokens(sup.store).create(name, [Scope(s) for s in scope])
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(ctx: typer.Context, output_format: FormatOption = None) -> None:
    """Every token, live and revoked (never their secrets)."""
    from bounced.http.tokens import Tokens

    with suppressions(ctx) as sup:
        rows = Tokens(sup.store).list()
    print_rows(output_format, TOKEN_COLUMNS, rows)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]
) -> None:
    """Revoke a token at once (its row stays, renamed, for the record)."""
    from bounced.cli.terminal import say
    from bounced.http.tokens import Tokens

    with suppressions(ctx) as sup:
        Tokens(sup.store).revoke(name)
    say(f"revoked {name}")


def register(app: typer.Typer) -> None:
    """Add `bounced token` to `app`."""
    app.add_typer(token_app, name="token")
