"""The `bounced` command line: the typer app, its global options, and `main()`.

Each command module (`bounced.cli.parse`, `.admin`, `.listener`, `.sending`) is a thin
layer over the Python API and adds its commands with `register(app)`; this module
only assembles them, so a new command module is one entry in `COMMAND_MODULES`.

`main()` imports and registers only the module of the command it runs (typer builds
a click command for every function registered, and the modules import what their
commands need): `bounced parse` of one file starts in half the time. Help, an unknown
command and `app` (for tests and tools that walk every command) have them all.
"""

from __future__ import annotations

import functools
import importlib
import io
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer

# typer (0.24 on) vendors click; its exceptions are public only there.
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from bounced.cli.terminal import say

#: Every command registered; built on first use (see `__getattr__`).
app: typer.Typer

__all__ = ["COMMAND_MODULES", "GLOBAL_VALUE_OPTIONS", "app", "build", "command_of", "main"]

#: Each command module of bounced.cli and the commands (and command groups) it
#: registers, in the order help lists them (tests/test_cli_commands.py holds it to
#: what the modules register).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "parse": ("parse", "explain"),
    "admin": (
        "ingest",
        "check",
        "list",
        "export",
        "show",
        "unmark",
        "block",
        "former-employee",
        "delete",
        "allow",
        "stats",
        "deliverability",
        "audit",
        "selection",
        "policy",
        "db",
    ),
    "listener": ("serve", "verp", "inbox"),
    "sending": ("worker", "sent", "retries", "smtp"),
    "api": ("api",),
    "tokens": ("token",),
    "policy_server": ("policy-server",),
    "clean": ("clean",),
    "domain": ("domain",),
    "providers": ("import",),
}

#: The global options that take a value (`--config FILE`): the word after one is
#: its value, not the command.
GLOBAL_VALUE_OPTIONS = frozenset({"--config", "--database-url", "--actor"})


def build(modules: Iterable[str] = COMMAND_MODULES) -> typer.Typer:
    """The typer app with the commands of `modules` (names of COMMAND_MODULES)."""
    built = typer.Typer(
        name="bounced",
        help="Bounce processing and suppression lists.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain help: rich markup would take "[verp] domain" in a help text for a style
        # tag and print " domain".
        rich_markup_mode=None,
    )
    built.callback()(_root)
    for name in modules:
        importlib.import_module(f"bounced.cli.{name}").register(built)
    return built


def command_of(args: Sequence[str]) -> str:
    """The command word of a command line ("" when there is none): the first word
    that is neither a global option nor the value of one."""
    words = iter(args)
    for word in words:
        if word in GLOBAL_VALUE_OPTIONS:
            next(words, None)
        elif word == "--" or not word.startswith("-"):
            return "" if word == "--" else word
    return ""


def _modules_for(args: Sequence[str]) -> list[str]:
    """The one module that serves the command of `args`; all of them for help, no
    command or an unknown one (so that click can list and suggest commands)."""
    command = command_of(args)
    wanted = [m for m, commands in COMMAND_MODULES.items() if command in commands]
    return wanted or list(COMMAND_MODULES)


def _print_version(value: bool) -> None:
    """`bounced --version`: the installed distribution's version, then exit 0."""
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"bounced {version('bounced-engine')}\n")
        raise typer.Exit(0)


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


@functools.cache
def _full_app() -> typer.Typer:
    return build()


def __getattr__(name: str) -> typer.Typer:
    """`app`, every command registered, built on first use (module-level getattr)."""
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        code = build(_modules_for(args))(args=args, prog_name="bounced", standalone_mode=False)
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
