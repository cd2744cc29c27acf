"""The `bounced` command line (typer): `bounced.cli.commands` assembles the command modules.

`main` is the console-script entry point; `app` the typer application with every
command (tests drive it with typer's CliRunner), built when first asked for: `main`
registers only the command it runs.
"""

from typing import TYPE_CHECKING

from bounced.cli.commands import main

if TYPE_CHECKING:
    from bounced.cli.commands import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> object:
    if name == "app":
        from bounced.cli import commands

        return commands.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
