"""The `bounced` command line: a thin layer over the Python API.

Each command turns its options into calls of library functions and hands the
resulting rows to `bounced.formats`; reading inputs is `bounced.sources`, parsing
many messages is `bounced.batch`, and talking to the person at the terminal is
`bounced.terminal`. A new command is one more decorated function here.

Exit codes: 0 when every input was read, 1 when some could not be (each one named
on standard error, the rest processed), 2 for usage errors.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from bounced.batch import Parsed, parse_sources
from bounced.dsn import TEXT_FACTS
from bounced.formats import Format, Row, default_format, write_rows
from bounced.sources import Unreadable, iter_sources
from bounced.terminal import Feedback

__all__ = ["PARSE_COLUMNS", "app", "command_group", "main"]

app = typer.Typer(
    name="bounced",
    help="Bounce processing and suppression lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: The fields of `bounced parse` output, in order (`class` is the bounce class).
PARSE_COLUMNS = ("file", "recipient", "kind", "class", "reason", *TEXT_FACTS)

#: What the table shows: the facts a person reads first; the data formats carry all.
PARSE_TABLE_COLUMNS = ("file", "recipient", "kind", "class", "reason", "status", "diagnostic")
_EMPTY_ROW = dict.fromkeys(PARSE_COLUMNS, "")

FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format (default: table on a terminal, ndjson otherwise).",
        show_default=False,
    ),
]


def command_group(name: str, summary: str) -> typer.Typer:
    """A group of subcommands (`bounced NAME ...`), registered on `app`."""
    group = typer.Typer(help=summary)
    app.add_typer(group, name=name)
    return group


#: `bounced serve` and `bounced worker --spool`: the listener's spool.
SpoolDirOption = Annotated[
    str | None,
    typer.Option(
        "--spool-dir", help="Spool directory (one per listener; default: listener.spool_dir)."
    ),
]


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
    # Read by the store commands (bounced.admin_cli).
    ctx.obj = {"config": config, "database_url": database_url, "actor": actor}


@app.command("parse")
def parse_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Message files, directories (recursively), mbox files, Maildir folders, "
            "or - for standard input.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    output_format: FormatOption = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes; 0 = one per CPU.")
    ] = 1,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="Also list messages that are not bounces (kind empty)."),
    ] = False,
) -> None:
    """Parse returned messages and print one row per recipient."""
    fmt = output_format or default_format(sys.stdout)
    # A progress bar would garble rows streaming to the same terminal; a table
    # is printed only at the end, so it can have one.
    progress = fmt is Format.TABLE or not sys.stdout.isatty()
    with Feedback(progress=progress) as feedback:
        results = parse_sources(iter_sources(paths), jobs or os.cpu_count() or 1)
        rows = _parse_rows(results, feedback, show_all)
        write_rows(fmt, PARSE_COLUMNS, rows, sys.stdout, table_columns=PARSE_TABLE_COLUMNS)
    raise typer.Exit(1 if feedback.failures else 0)


@app.command("explain")
def explain_command(
    path: Annotated[Path, typer.Argument(help="A message file.", dir_okay=False, exists=True)],
) -> None:
    """Why a message parsed as it did: parts, candidates and winner, addresses kept or dropped."""
    from bounced.dsn.explain import explain, render  # only this command needs it

    typer.echo(render(explain(path.read_bytes())))


def _parse_rows(
    results: Iterable[Parsed | Unreadable], feedback: Feedback, show_all: bool
) -> Iterator[Row]:
    """Rows of `bounced parse`: one per Bounce; a report that is a bounce without any
    recipient still gets a row (a bounce is never silently dropped)."""
    for result in results:
        if isinstance(result, Unreadable):
            feedback.unreadable(result.name, result.reason)
            continue
        feedback.advance()
        name, report = result.message.name, result.report
        for bounce in report.bounces:
            row = bounce.to_dict()
            yield {**row, "file": name, "class": row["bounce_class"]}
        if not report.bounces and (report.is_bounce or show_all):
            yield _EMPTY_ROW | {
                "file": name,
                "kind": report.kind or "",
                "detector": report.detector,
            }


def main() -> None:
    """Console-script entry point."""
    # Rows are data: UTF-8 for programs reading a pipe, and a character the
    # terminal cannot show becomes '?' rather than an encoding error.
    if isinstance(sys.stdout, io.TextIOWrapper):
        encoding = sys.stdout.encoding if sys.stdout.isatty() else "utf-8"
        sys.stdout.reconfigure(encoding=encoding, errors="replace")
    app(prog_name="bounced")


# The suppression-list commands (ingest, check, list, ...), the SMTP side (verp,
# serve, inbox) and the sending log and retries (sent, retries, worker, smtp test)
# register on `app` there.
from bounced import admin_cli, listener_cli, retry_cli  # noqa: E402, F401
