"""The `bounced` command line: the typer app, its global options, and `main()`.

Each command module (`bounced.cli.parse`, `.admin`, `.listener`, `.sending`) is a thin
layer over the Python API and adds its commands with `register(app)`; this module
only assembles them, so a new command module is one line in `_COMMAND_MODULES`.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from bounced.cli import admin, api, listener, parse, policy_server, providers, sending, tokens

__all__ = ["app", "main"]

app = typer.Typer(
    name="bounced",
    help="Bounce processing and suppression lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Settings file (default: $BOUNCED_CONFIG, ./config.toml)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Store URL (overrides config and env).", show_default=False
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", help="Name for the audit log (default: the OS user).", show_default=False
        ),
    ] = None,
) -> None:
    """Bounce processing and suppression lists."""
    # Read by the store commands (bounced.cli.admin).
    ctx.obj = {"config": config, "database_url": database_url, "actor": actor}


for _module in (parse, admin, listener, sending, api, tokens, policy_server, providers):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    # Rows are data: UTF-8 for programs reading a pipe, and a character the
    # terminal cannot show becomes '?' rather than an encoding error.
    if isinstance(sys.stdout, io.TextIOWrapper):
        encoding = sys.stdout.encoding if sys.stdout.isatty() else "utf-8"
        sys.stdout.reconfigure(encoding=encoding, errors="replace")
    app(prog_name="bounced")
