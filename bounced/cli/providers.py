"""`bounced import`: a sending provider's suppression list into the store; and the
provider formats of `bounced export` (`--format ses|mailgun|postmark|sendgrid`).

Both are thin over bounced.providers.imports and .exports. Exit codes: 0 done, 1 done
with rows skipped (each reported with its line), 2 a file or setting that cannot be
used (nothing imported).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from bounced.cli.support import buffered_stdout, suppressions
from bounced.cli.terminal import say

if TYPE_CHECKING:
    from bounced.db.filters import Filters

__all__ = [
    "EXPORT_CHOICES",
    "ExportTarget",
    "ImportFormat",
    "export_to_provider",
    "import_command",
    "register",
]

# The choices are written out here so that the CLI starts without importing
# bounced.providers; tests/test_imports.py checks them against the formats.


class ImportFormat(StrEnum):
    """`bounced import FORMAT` (bounced.providers.imports.IMPORT_FORMATS)."""

    SES = "ses"
    MAILGUN = "mailgun"
    SENDGRID = "sendgrid"
    POSTMARK = "postmark"
    CSV = "csv"


class ExportTarget(StrEnum):
    """`bounced export --format`: the output formats (bounced.formats.Format), then the
    providers' import shapes (bounced.providers.exports.EXPORT_FORMATS)."""

    TABLE = "table"
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"
    SES = "ses"
    MAILGUN = "mailgun"
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"


EXPORT_CHOICES = ("ses", "mailgun", "postmark", "sendgrid")

#: Rows between two progress lines on a terminal.
_PROGRESS_EVERY = 10_000


def _columns(specs: list[str] | None) -> dict[str, str]:
    from bounced.providers.imports import parse_columns

    try:
        return parse_columns(specs or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _open(file: str) -> TextIO:
    if file == "-":
        return open(sys.stdin.fileno(), encoding="utf-8-sig", errors="replace", closefd=False)
    return open(file, encoding="utf-8-sig", errors="replace", newline="")


def import_command(
    ctx: typer.Context,
    fmt: Annotated[
        ImportFormat,
        typer.Argument(
            metavar="FORMAT",
            help="ses, mailgun, sendgrid, postmark, or csv (a header with address, reason, date).",
            show_default=False,
        ),
    ],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The provider's export, or - for stdin.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check every row; record nothing.")
    ] = False,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column", help="csv: the file's column for ours, e.g. address=Email (repeatable)."
        ),
    ] = None,
) -> None:
    """Import a sending provider's suppression list: each row an event with source
    import:FORMAT, through the policy like any bounce. Importing again changes nothing."""
    from bounced.errors import UnreadableImport
    from bounced.providers.imports import entries, record

    columns = _columns(column)
    name = "<stdin>" if file == "-" else file
    terminal = sys.stderr.isatty()

    def progress(rows: int) -> None:
        if terminal and rows // _PROGRESS_EVERY != (rows - 1) // _PROGRESS_EVERY:
            sys.stderr.write(f"\r{rows} rows read")

    try:
        stream = _open(file)
    except OSError as exc:
        say(f"{name}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    with suppressions(ctx) as sup, stream:
        try:
            done = record(
                sup,
                entries(fmt.value, stream, columns=columns),
                fmt.value,
                dry_run=dry_run,
                progress=progress,
            )
        except UnreadableImport as exc:
            say(f"{name}: {exc}")
            raise typer.Exit(2) from None
    if terminal and done.rows >= _PROGRESS_EVERY:
        sys.stderr.write("\n")
    for where, why in done.skipped:
        say(f"{name}, {where}: {why}")
    verb = "would import" if dry_run else "imported"
    say(
        f"{verb} {done.imported}, already known {done.known}, skipped {len(done.skipped)}"
        f" (of {done.rows} rows)"
    )
    raise typer.Exit(1 if done.skipped else 0)


def export_to_provider(ctx: typer.Context, filters: Filters, fmt: str, output: Path | None) -> None:
    """`bounced export --format PROVIDER`: the blocked addresses in the provider's import
    shape; an SES export of more than 100 000 rows goes on in OUTPUT-2, OUTPUT-3, ..."""
    from bounced.providers.exports import SES_LIMIT, write_export
    from bounced.suppressions import plain

    with suppressions(ctx) as sup, ExitStack() as files:
        rows = map(plain, sup.list(filters))
        try:
            if output is None:
                with buffered_stdout() as out:
                    count = write_export(fmt, rows, out)
            else:

                def split(part: int) -> Any:
                    path = output.with_name(f"{output.stem}-{part}{output.suffix}")
                    say(f"more than {SES_LIMIT} rows: going on in {path}")
                    return files.enter_context(path.open("w", encoding="utf-8", newline=""))

                first = files.enter_context(output.open("w", encoding="utf-8", newline=""))
                count = write_export(fmt, rows, first, split=split)
        except ValueError as exc:
            say(f"{exc}: give --output FILE to have the rest in FILE-2, FILE-3, ...")
            raise typer.Exit(1) from None
    say(f"exported {count} addresses")


def register(app: typer.Typer) -> None:
    """Add `bounced import` to `app` (the export formats join `bounced export`)."""
    app.command("import")(import_command)
