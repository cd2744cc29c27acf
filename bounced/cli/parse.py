"""`bounced parse`: what the parser makes of messages, without storing anything.

Exit codes: 0 when every input was read, 1 when some could not be (each one named
on standard error, the rest processed), 2 for usage errors.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Annotated, NamedTuple

import typer

from bounced.cli.support import FormatOption
from bounced.cli.terminal import Feedback, say
from bounced.dsn import TEXT_FACTS
from bounced.dsn.mime import CUT_PROBLEM
from bounced.formats import Format, Row, default_format, write_rows
from bounced.inputs.batch import Result, map_results
from bounced.inputs.sources import Skipped, Unreadable, find_sources, input_size

__all__ = [
    "PARSE_COLUMNS",
    "PARSE_TABLE_COLUMNS",
    "Rows",
    "explain_command",
    "parse_command",
    "parse_rows",
    "register",
    "rows_of",
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
    # Each process turns what it parsed into rows (`Rows`): the messages' bytes and
    # reports never cross, and the workers read their own files.
    done = map_results(
        functools.partial(rows_of, show_all), find_sources(paths), jobs or os.cpu_count() or 1
    )
    total = functools.partial(input_size, paths)
    with Feedback(progress=progress, total=total) as feedback, closing(done) as results:
        rows = parse_rows(results, feedback)
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


class Rows(NamedTuple):
    """What `bounced parse` prints of one message: made where it was parsed."""

    name: str
    size: int
    rows: Sequence[Row]
    #: Cut at the read limit with no bounce found before the cut (see `rows_of`).
    cut: bool


def rows_of(show_all: bool, result: Result) -> Rows | Unreadable | Skipped:
    """The rows of `bounced parse` for one message: one per Bounce; a report that is a
    bounce without any recipient still gets a row (a bounce is never silently dropped)."""
    if isinstance(result, Unreadable | Skipped):
        return result
    name, report = result.message.name, result.report
    rows = []
    for bounce in report.bounces:
        row = bounce.to_dict()  # a fresh dict: completed in place
        row["file"], row["class"] = name, row["bounce_class"]
        rows.append(row)
    if not report.bounces and (report.is_bounce or show_all):
        rows.append(
            _EMPTY_ROW | {"file": name, "kind": report.kind or "", "detector": report.detector}
        )
    cut = not report.bounces and CUT_PROBLEM in report.problems
    return Rows(name, len(result.message.raw), rows, cut)


def parse_rows(results: Iterable[Rows | Unreadable | Skipped], feedback: Feedback) -> Iterator[Row]:
    """The rows of `results`, in order, each result told to `feedback` as it comes."""
    for result in results:
        if isinstance(result, Unreadable):
            feedback.unreadable(result.name, result.reason)
        elif isinstance(result, Skipped):
            feedback.skip(result.size)
        else:
            feedback.advance(result.size)
            if result.cut:
                # Its rows may lie past the read limit: not a silent "no bounce".
                feedback.unreadable(result.name, f"{CUT_PROBLEM}, and no row found there")
            yield from result.rows
