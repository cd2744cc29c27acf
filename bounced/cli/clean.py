"""`bounced clean`: a list in, the list with a verdict per row out (bounced.clean).

Exit codes: 0 when the list was read (rejects or not), 1 when some rows could not be
read (each line named on standard error; the rest is cleaned), 2 for usage errors and
an input that cannot be read at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from bounced.clean.kinds import Mode, OutputFormat, Status
from bounced.cli.support import command_settings, suppressions
from bounced.cli.terminal import say
from bounced.errors import BouncedError

if TYPE_CHECKING:
    from bounced.clean.reading import Table
    from bounced.clean.summary import Tally

__all__ = [
    "clean_command",
    "register",
]

#: Unreadable lines named one by one on stderr; past this only counted.
_SHOWN_UNREADABLE = 20


def register(app: typer.Typer) -> None:
    """Add `bounced clean` to `app`."""
    app.command("clean")(clean_command)


def clean_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="CSV, TSV, XLSX or one address per line; - for stdin.")
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Cleaned list (default: standard output).")
    ] = "-",
    rejects: Annotated[
        str | None,
        typer.Option("--rejects", help="Write rejected rows here instead of to the output."),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format", "-f", help="csv, ndjson or xlsx (default: from -o's name, else csv)."
        ),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option("--column", help="The address column: a header name or a number from 1."),
    ] = None,
    dns: Annotated[bool, typer.Option("--dns/--no-dns", help="Look up each domain.")] = True,
    suppression: Annotated[
        bool,
        typer.Option("--suppression/--no-suppression", help="Check the suppression store."),
    ] = True,
    typos: Annotated[
        bool, typer.Option("--typos/--no-typos", help="Suggest fixes for mistyped domains.")
    ] = True,
    duplicates: Annotated[
        bool, typer.Option("--duplicates/--no-duplicates", help="Mark repeated addresses.")
    ] = True,
    roles: Annotated[Mode, typer.Option("--roles", help="Role accounts (info@...).")] = Mode.RISKY,
    disposable: Annotated[
        Mode, typer.Option("--disposable", help="Disposable mailbox domains.")
    ] = Mode.RISKY,
    nameserver: Annotated[
        list[str] | None,
        typer.Option("--nameserver", help="Resolver to ask, host or host:port (repeatable)."),
    ] = None,
    dns_timeout: Annotated[
        str | None, typer.Option("--dns-timeout", help="Per lookup, e.g. 3s.")
    ] = None,
) -> None:
    """Check a list before a campaign: which addresses to mail, and why not the others."""
    # The checks' libraries (email-validator, dnspython, the public suffix list) load
    # when a list is cleaned, not when any other command starts.
    from bounced.clean import CleanOptions, clean
    from bounced.clean.reading import open_table
    from bounced.clean.summary import Tally
    from bounced.clean.writing import cells_of, output_columns

    settings = command_settings(
        ctx, {"dns.nameservers": nameserver or None, "dns.timeout": dns_timeout}
    )
    fmt = output_format or _format_of(output)
    options = CleanOptions(
        dns=dns, typos=typos, duplicates=duplicates, roles=roles, disposable=disposable
    )
    store = suppressions(ctx) if suppression else nullcontext(None)
    try:
        with ExitStack() as stack:
            stream, name, size = _input(stack, source)
            table = open_table(stream, name=name, size=size, column=column)
            sup = stack.enter_context(store)
            columns = output_columns(table.columns)
            writers = _writers(stack, output, rejects, fmt, columns, table)
            results = clean(
                table.rows,
                column=table.column,
                options=options,
                suppressions=sup,
                settings=settings,
            )
            tally = Tally()
            with _progress(table, tally) as tick:
                for result in results:
                    tally.add(result)
                    writer = writers[result.status is Status.REJECT]
                    writer.write(cells_of(result, table.width))
                    tick()
    except BouncedError as exc:  # an input that cannot be read at all
        say(str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        say(f"{exc.filename or source}: {exc.strerror}")
        raise typer.Exit(2) from None
    _report(table, tally, source)
    raise typer.Exit(1 if tally.unreadable else 0)


def _format_of(output: str) -> OutputFormat:
    suffix = Path(output).suffix.lower()
    if suffix == ".xlsx":
        return OutputFormat.XLSX
    return OutputFormat.NDJSON if suffix in (".ndjson", ".jsonl") else OutputFormat.CSV


def _input(stack: ExitStack, source: str) -> tuple[BinaryIO, str, int | None]:
    """(binary stream, name, size) of the input."""
    if source == "-":
        return sys.stdin.buffer, "", None
    path = Path(source)
    stream = stack.enter_context(path.open("rb"))
    return stream, path.name, path.stat().st_size


def _binary_output(stack: ExitStack, target: str) -> BinaryIO:
    if target == "-":
        sys.stdout.flush()
        return sys.stdout.buffer
    return stack.enter_context(Path(target).open("wb"))


def _writers(
    stack: ExitStack,
    output: str,
    rejects: str | None,
    fmt: OutputFormat,
    columns: tuple[str, ...],
    table: Table,
) -> dict[bool, Any]:
    """{rejected?: writer}: one writer for everything, or a second one for rejects."""
    from bounced.clean.writing import open_writer

    delimiter = table.delimiter or ","
    bom = table.encoding not in ("utf-8", "")

    def writer(target: str, target_fmt: OutputFormat) -> Any:
        w = open_writer(
            target_fmt, _binary_output(stack, target), columns, delimiter=delimiter, bom=bom
        )
        stack.callback(w.close)
        return w

    main = writer(output, fmt)
    other = writer(rejects, _rejects_format(rejects, fmt)) if rejects else main
    return {False: main, True: other}


def _rejects_format(target: str, default: OutputFormat) -> OutputFormat:
    """The rejects file's format: from its name when it says, else the output's."""
    suffix = Path(target).suffix.lower()
    return _format_of(target) if suffix in (".xlsx", ".ndjson", ".jsonl", ".csv") else default


@contextmanager
def _progress(table: Table, tally: Tally) -> Iterator[Any]:
    """A progress bar (rows, rate, time left) on a terminal; a no-op tick otherwise."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr)
    bar = Progress(
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("clean", total=table.total, rows=0, rate=0.0)
    start = time.monotonic()

    def tick() -> None:
        if tally.rows % 500 == 0:
            rate = tally.rows / max(time.monotonic() - start, 1e-6)
            bar.update(task, completed=table.progress[0], rows=tally.rows, rate=rate)

    with bar:
        yield tick


def _report(table: Table, tally: Tally, source: str) -> None:
    """Unreadable lines, then the summary, on standard error."""
    for line, problem in tally.unreadable[:_SHOWN_UNREADABLE]:
        say(f"{source}: line {line}: {problem}")
    if len(tally.unreadable) > _SHOWN_UNREADABLE:
        say(f"{source}: {len(tally.unreadable) - _SHOWN_UNREADABLE} more unreadable lines")
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(file=sys.stderr, markup=False, emoji=False, highlight=False)
    read = table.kind + (f", {table.encoding}" if table.encoding else "")
    name = table.columns[table.column]
    console.print(f"{source}: {read}, {tally.rows} rows, addresses in column {name!r}")
    counts = RichTable("status", "reason", "rows", title="bounced clean")
    for status in Status:
        counts.add_row(status.value, "", str(tally.statuses.get(status, 0)))
        for (s, reason), n in sorted(tally.reasons.items()):
            if s == status:
                counts.add_row("", reason, str(n))
    console.print(counts)
    if tally.failed_domains:
        domains = RichTable("domain", "reason", "rows", title="domains that failed DNS")
        for (domain, reason), n in tally.failed_domains.most_common(20):
            domains.add_row(domain, reason, str(n))
        console.print(domains)
