"""`bounced policy-server`: Postfix's check_policy_service (bounced.postfix.server)."""

import logging
import sys
from typing import Annotated

import typer

from bounced.cli.support import command_settings
from bounced.cli.terminal import say

__all__ = ["register"]


def policy_server_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port.")] = None,
) -> None:
    """Answer Postfix's policy requests: REJECT recipients on the suppression list."""
    from bounced.db.store import Store
    from bounced.errors import BouncedError
    from bounced.health import serving
    from bounced.postfix.server import serve
    from bounced.suppressions import Suppressions

    settings = command_settings(ctx, {"policy_server.host": host, "policy_server.port": port})
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="bounced: %(message)s")
    try:
        sup = Suppressions(Store.open(settings), settings, "policy-server")
    except BouncedError as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    try:
        with serving(settings):
            serve(sup, settings)
    except OSError as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    finally:
        sup.close()


def register(app: typer.Typer) -> None:
    """Add `bounced policy-server` to `app`."""
    app.command("policy-server")(policy_server_command)
