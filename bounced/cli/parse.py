"""`bounced parse`: what the parser makes of messages, without storing anything.

Exit codes: 0 when every input was read, 1 when some could not be (each one named
on standard error, the rest processed), 2 for usage errors.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from bounced.cli.support import FormatOption
from bounced.cli.terminal import Feedback, say
from bounced.dsn import TEXT_FACTS
from bounced.dsn.mime import CUT_PROBLEM
from bounced.formats import Format, Row, default_format, write_rows
from bounced.inputs.batch import Parsed, parse_sources
from bounced.inputs.sources import Skipped, Unreadable, input_size, iter_sources

__all__ = [
    "PARSE_COLUMNS",
    "PARSE_TABLE_COLUMNS",
    "explain_command",
    "parse_command",
    "parse_rows",
    "register",
]

#: The fields of `bounced parse` output, in order (`class` is the bounce class).
PARSE_COLUMNS = ("file", "recipient", "kind", "class", "reason", *TEXT_FACTS)

#: What the table shows: the facts a person reads first; the data formats carry all.
PARSE_TABLE_COLUMNS = ("file", "recipient", "kind", "class", "reason", "status", "diagnostic")
_EMPTY_ROW = dict.fromkeys(PARSE_COLUMNS, "")


def register(app: typer.Typer) -> None:
    """Add `bounced parse` and `bounced explain` to `app`."""
    app.command("parse")(parse_command)
    app.command("explain")(explain_command)


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
    parsed = closing(parse_sources(iter_sources(paths), jobs or os.cpu_count() or 1))
    total = functools.partial(input_size, paths)
    with Feedback(progress=progress, total=total) as feedback, parsed as results:
        rows = parse_rows(results, feedback, show_all)
        try:
            write_rows(fmt, PARSE_COLUMNS, rows, sys.stdout, table_columns=PARSE_TABLE_COLUMNS)
        except KeyboardInterrupt:
            say("interrupted")
            raise typer.Exit(130) from None
    raise typer.Exit(1 if feedback.failures else 0)


def explain_command(
    path: Annotated[Path, typer.Argument(help="A message file.", dir_okay=False, exists=True)],
) -> None:
    """Why a message parsed as it did: parts, candidates and winner, addresses kept or dropped."""
    from bounced.dsn.explain import explain, render  # only this command needs it

    typer.echo(render(explain(path.read_bytes())))


def parse_rows(
    results: Iterable[Parsed | Unreadable | Skipped], feedback: Feedback, show_all: bool
) -> Iterator[Row]:
    """Rows of `bounced parse`: one per Bounce; a report that is a bounce without any
    recipient still gets a row (a bounce is never silently dropped)."""
    for result in results:
        if isinstance(result, Unreadable):
            feedback.unreadable(result.name, result.reason)
            continue
        if isinstance(result, Skipped):
            feedback.skip(result.size)
            continue
        feedback.advance(len(result.message.raw))
        name, report = result.message.name, result.report
        if not report.bounces and CUT_PROBLEM in report.problems:
            # Its rows may lie past the read limit: not a silent "no bounce".
            feedback.unreadable(name, f"{CUT_PROBLEM}, and no row found there")
        for bounce in report.bounces:
            row = bounce.to_dict()  # a fresh dict: completed in place
            row["file"], row["class"] = name, row["bounce_class"]
            yield row
        if not report.bounces and (report.is_bounce or show_all):
            yield _EMPTY_ROW | {
                "file": name,
                "kind": report.kind or "",
                "detector": report.detector,
            }
