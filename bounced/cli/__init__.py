"""The `bounced` command line (typer): `bounced.cli.app` assembles the command modules.

`main` is the console-script entry point; `app` the typer application (tests drive
it with typer's CliRunner).
"""

from bounced.cli.app import app, main

__all__ = ["app", "main"]
