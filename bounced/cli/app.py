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

# typer (0.24 on) vendors click; its exceptions are public only there.
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from bounced.cli import (
    admin,
    api,
    clean,
    domain,
    listener,
    parse,
    policy_server,
    providers,
    sending,
    tokens,
)
from bounced.cli.terminal import say

__all__ = ["app", "main"]

app = typer.Typer(
    name="bounced",
    help="Bounce processing and suppression lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would take "[verp] domain" in a help text for a style tag
    # and print " domain".
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    """`bounced --version`: the installed distribution's version, then exit 0."""
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"bounced {version('bounced-engine')}\n")
        raise typer.Exit(0)


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
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version of bounced and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Bounce processing and suppression lists."""
    # Read by the store commands (bounced.cli.admin).
    ctx.obj = {"config": config, "database_url": database_url, "actor": actor}


for _module in (
    parse,
    admin,
    listener,
    sending,
    api,
    tokens,
    policy_server,
    clean,
    domain,
    providers,
):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    # Rows are data: UTF-8 for programs reading a pipe, and a character the
    # terminal cannot show becomes '?' rather than an encoding error.
    if isinstance(sys.stdout, io.TextIOWrapper):
        encoding = sys.stdout.encoding if sys.stdout.isatty() else "utf-8"
        sys.stdout.reconfigure(encoding=encoding, errors="replace")
    sys.exit(_run(sys.argv[1:]))


def _run(args: list[str]) -> int:
    """Run the command line; a usage error (an unknown option, a value out of range, a
    choice not offered) is one plain line on stderr and exit 2, as every other error is,
    instead of a framed panel."""
    try:
        code = app(args=args, prog_name="bounced", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
        return 2
    except ClickException as exc:
        context = getattr(exc, "ctx", None)
        command = context.command_path.removeprefix("bounced").strip() if context else ""
        say(f"{command}: {exc.format_message()}" if command else exc.format_message())
        return exc.exit_code
    except typer.Abort:
        say("aborted")
        return 1
    return code if isinstance(code, int) else 0
