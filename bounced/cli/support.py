"""What the store commands share: settings and the store from the global options, rows
to standard output, points in time from the command line.

The commands (bounced.cli.parse, .admin, .listener, .sending) are thin: each
turns options into calls and rows. Everything around that is here, so every
command reads `--config` and `--database-url` the same way, prints rows the same
way, and turns errors into the same exit codes:

- 0: done,
- 1: done, but something in the input was wrong (the command says what),
- 2: usage, configuration or database errors (nothing was done).

Nothing here imports the store (SQLAlchemy) before a command runs, so `bounced parse`
and `bounced --help` never pay for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from bounced.cli.terminal import say
from bounced.formats import Format, default_format, write_rows

if TYPE_CHECKING:
    from bounced.config import Settings
    from bounced.suppressions import Suppressions

__all__ = [
    "FormatOption",
    "SpoolDirOption",
    "buffered_stdout",
    "choice_option",
    "choices",
    "command_settings",
    "enum_choice",
    "output_file",
    "point_in_time",
    "print_rows",
    "suppressions",
    "writable_folder",
]


FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format (default: table on a terminal, ndjson otherwise).",
        show_default=False,
    ),
]

#: `bounced serve` and `bounced worker --spool`: the listener's spool.
SpoolDirOption = Annotated[
    str | None,
    typer.Option(
        "--spool-dir", help="Spool directory (one per listener; default: listener.spool_dir)."
    ),
]


def command_settings(ctx: typer.Context, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings with the global options (`bounced --config ... --database-url ...`) and
    the command's own `overrides` (dotted keys, None for an option not given); a
    configuration error is one line on stderr and exit 2."""
    from bounced.config import load_settings
    from bounced.errors import BouncedError

    options = ctx.find_root().obj or {}
    given = {"database_url": options.get("database_url")} | (overrides or {})
    try:
        return load_settings(options.get("config"), overrides=given)
    except BouncedError as exc:
        say(str(exc))
        raise typer.Exit(2) from None


@contextmanager
def suppressions(ctx: typer.Context, *, read_only: bool = False) -> Iterator[Suppressions]:
    """The store for one command, with every expected error as one line and an exit code:
    2 when nothing could be done (configuration, database down), 1 for an error about
    the input (an unknown address, plan or selection), 130 when interrupted.
    `read_only` for a command that only looks up (`check`)."""
    from bounced.errors import BouncedError, DatabaseUnavailable
    from bounced.suppressions import Suppressions

    settings = command_settings(ctx)
    actor = (ctx.find_root().obj or {}).get("actor")
    try:
        sup = Suppressions.open(settings, actor=actor, read_only=read_only)
    except BouncedError as exc:  # database URL, schema: nothing done
        say(str(exc))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # while connecting or creating the schema (a transaction)
        say("interrupted")
        raise typer.Exit(130) from None
    try:
        yield sup
    except DatabaseUnavailable as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    except BouncedError as exc:
        say(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        say("interrupted: what was recorded so far is kept; run again to finish")
        raise typer.Exit(130) from None
    finally:
        sup.close()


def print_rows(
    fmt: Format | None,
    columns: tuple[str, ...],
    rows: Iterable[Any],
    *,
    raw: bool = False,
    table_columns: tuple[str, ...] | None = None,
) -> int:
    """Rows to stdout in `fmt` (default: a table on a terminal, NDJSON otherwise); store
    rows' times and enums as plain text unless the rows are `raw` (hold none); a table
    shows only `table_columns` when given."""
    from bounced.suppressions import plain

    fmt = fmt or default_format(sys.stdout)
    with buffered_stdout() as out:
        rows = rows if raw else map(plain, rows)
        return write_rows(fmt, columns, rows, out, table_columns=table_columns)


@contextmanager
def buffered_stdout() -> Iterator[Any]:
    """Standard output with a real buffer: under PYTHONUNBUFFERED (or -u) every row
    would otherwise be a system call, which costs more than the lookup behind it."""
    sys.stdout.flush()
    encoding = sys.stdout.encoding or "utf-8"
    with open(sys.stdout.fileno(), "w", encoding=encoding, errors="replace", closefd=False) as out:
        yield out


def choices(
    valid: Callable[[], Iterable[str]],
) -> Callable[[list[str] | None], list[str] | None]:
    """A typer callback for a repeatable option of fixed values: an unknown value is a
    usage error naming the valid ones (exit 2), not a filter that silently matches
    nothing. `valid` is called only when the option is given, so the enums behind it
    (some in modules that import SQLAlchemy) are imported only then."""

    def check(given: list[str] | None) -> list[str] | None:
        if given:
            offered = [str(v) for v in valid()]
            wrong = [v for v in given if v not in offered]
            if wrong:
                raise typer.BadParameter(
                    f"{', '.join(map(repr, wrong))}: choose from {', '.join(offered)}"
                )
        return given

    return check


def enum_choice(module: str, name: str) -> Callable[[], list[str]]:
    """The values of enum `module.name`, for `choice_option`; imported when called."""

    def values() -> list[str]:
        import importlib

        return [member.value for member in getattr(importlib.import_module(module), name)]

    return values


def choice_option(flag: str, help: str, valid: Callable[[], Iterable[str]]) -> Any:
    """A repeatable option of fixed values, checked by `choices`."""
    return Annotated[list[str] | None, typer.Option(flag, help=help, callback=choices(valid))]


def output_file(path: Path, option: str = "--output") -> Path:
    """A file the command may create or overwrite, checked before anything is done: a
    missing directory or a directory in its place is one line and exit 2."""
    if path.is_dir():
        _refuse(f"{option} {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        _refuse(f"{option} {path}: no directory {path.parent}")
    return path


def writable_folder(path: Path, option: str) -> Path:
    """A directory the command will write into, created when missing, checked before
    anything is done: a file in its place, or a place that cannot be written, is one
    line and exit 2."""
    if path.exists() and not path.is_dir():
        _refuse(f"{option} {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _refuse(f"{option} {path}: {exc.strerror or exc}")
    if not os.access(path, os.W_OK | os.X_OK):
        _refuse(f"{option} {path}: cannot write there")
    return path


def _refuse(line: str) -> NoReturn:
    say(line)
    raise typer.Exit(2)


def point_in_time(text: str | None) -> datetime | None:
    """A point in time given on the command line (`--since`): an ISO date or datetime
    (UTC unless it says otherwise), or a duration back from now (`7d`, `12h`); None
    for an option not given."""
    from bounced.config import parse_duration

    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write a date (2024-05-01) or a duration (7d)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
