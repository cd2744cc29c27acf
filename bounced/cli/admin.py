"""The suppression-list commands of `bounced`: ingest, check, list, admin actions, selections.

Registered on the same typer app as `bounced parse` (see the end of bounced.cli).
Each command is a thin layer over `bounced.suppressions.Suppressions`: it turns options
into calls and rows, and errors into one plain line on stderr and an exit code
(the store, the rows out and the errors through bounced.cli.support):

- 0: done (check: every address may be mailed),
- 1: done, but something is wrong with the input (an address blocked for `check`,
  an invalid address in a file, an address or selection the store does not know),
- 2: usage, configuration or database errors (nothing was done).

The store (SQLAlchemy) is imported when a command runs, so `bounced parse` and
`bounced --help` never pay for it. No `from __future__ import annotations` here:
the filter options are added to signatures as live objects (see `with_filters`).
"""

import bisect
import functools
import gc
import inspect
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from bounced.cli.providers import EXPORT_CHOICES, ExportTarget, export_to_provider
from bounced.cli.support import (
    FormatOption,
    buffered_stdout,
    choice_option,
    command_settings,
    enum_choice,
    output_file,
    point_in_time,
    print_rows,
    suppressions,
    writable_folder,
)
from bounced.cli.terminal import Feedback, say
from bounced.formats import Format, default_format, write_document

if TYPE_CHECKING:
    from bounced.db.filters import Filters

__all__ = [
    "CHECK_COLUMNS",
    "LIST_TABLE_COLUMNS",
    "TIMELINE_COLUMNS",
    "AddressArgs",
    "ExportFormat",
    "ExportOrProviderFormat",
    "FileOption",
    "Inputs",
    "NameArg",
    "OutputOption",
    "allow_command",
    "audit_command",
    "block_command",
    "check_command",
    "db_app",
    "db_prune",
    "db_upgrade",
    "delete_command",
    "deliverability_command",
    "export_command",
    "former_employee_command",
    "ingest_command",
    "list_command",
    "policy_app",
    "policy_apply",
    "register",
    "selection_add",
    "selection_app",
    "selection_export",
    "selection_list",
    "selection_remove",
    "selection_show",
    "show_command",
    "stats_command",
    "unmark_command",
    "with_filters",
]

#: Columns of `bounced check`: the address as given, send/blocked/invalid, and why.
CHECK_COLUMNS = ("address", "verdict", "state", "reason")
#: Columns of the timeline in `bounced show`.
TIMELINE_COLUMNS = ("at", "what", "kind", "reason", "status", "actor", "detail", "source")

selection_app = typer.Typer(help="Named sets of addresses (projects, campaign lists).")
policy_app = typer.Typer(help="The blocking policy.")
db_app = typer.Typer(help="The database schema.")


# --- addresses from arguments and files -----------------------------------------------------


AddressArgs = Annotated[
    list[str] | None,
    typer.Argument(help="Addresses.", metavar="ADDR...", show_default=False),
]
FileOption = Annotated[
    str | None,
    typer.Option(
        "--file", help="Read addresses from a file, one per line ('-' = stdin; # comments)."
    ),
]


class Inputs:
    """Addresses from the command line, then from `--file`, streamed.

    Iterating yields the address texts; `origin(i)` names where the i-th came from
    (`argument 2`, `list.txt:17`), so an invalid address can be reported by its line
    without carrying a record per address through the hot loop: only where the
    numbering jumps (a blank or comment line) is anything remembered.
    """

    def __init__(self, addresses: list[str] | None, file: str | None) -> None:
        self.addresses = addresses or []
        self.file = file
        self.name = "<stdin>" if file == "-" else (file or "")
        #: (index of a yielded address, its line number): at the start of each block
        #: read, and for every address of a block with blank or comment lines.
        self._jumps: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[str]:
        yield from self.addresses
        if self.file is None:
            return
        try:
            stream = _open_text(self.file)
        except OSError as exc:
            say(f"{self.name}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
        index, line = len(self.addresses), 1  # next address's index and line number
        with stream:
            while block := stream.readlines(1 << 16):
                texts = [text.strip() for text in block]
                if "" not in texts and not any(t[0] == "#" for t in texts):
                    # The usual block: one address per line, nothing else.
                    self._jumps.append((index, line))
                    yield from texts
                    index, line = index + len(texts), line + len(texts)
                    continue
                for text in texts:
                    if text and text[0] != "#":
                        self._jumps.append((index, line))
                        index += 1
                        yield text
                    line += 1

    def origin(self, index: int) -> str:
        """Where the address yielded at `index` (from 0) came from."""
        if index < len(self.addresses):
            return f"argument {index + 1}"
        first = len(self.addresses)
        at = bisect.bisect_right(self._jumps, (index, sys.maxsize))
        start, line = self._jumps[at - 1] if at else (first, 1)
        return f"{self.name}:{line + index - start}"


def _open_text(file: str) -> Any:
    """A file (or stdin for '-') as text; undecodable bytes become U+FFFD, never an error."""
    if file == "-":
        return open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
    return open(file, encoding="utf-8-sig", errors="replace")


class _Collected(NamedTuple):
    addresses: list[str]
    invalid: int


def _collect(
    normalize: Callable[[str], str], addresses: list[str] | None, file: str | None
) -> _Collected:
    """Valid addresses, normalised; each invalid one reported with its origin."""
    from bounced.errors import InvalidAddress

    valid, invalid = [], 0
    inputs = Inputs(addresses, file)
    for index, text in enumerate(inputs):
        try:
            valid.append(normalize(text))
        except InvalidAddress as exc:
            invalid += 1
            say(f"{inputs.origin(index)}: {exc}")
    if not valid and not invalid:
        say("no addresses given (arguments or --file)")
        raise typer.Exit(2)
    return _Collected(valid, invalid)


def _finish(done: int, verb: str, unknown: Sequence[str] = (), invalid: int = 0) -> None:
    """The closing line of an admin action, and its exit code."""
    say(f"{verb} {done} address{'es' if done != 1 else ''}")
    if unknown:
        for address in unknown:
            say(f"not in the store: {address}")
    if unknown or invalid:
        raise typer.Exit(1)


# --- filters shared by list, export and selection commands ------------------------------------


def _reasons() -> list[str]:
    """What `--reason` matches: why an address was blocked, or its last bounce's reason."""
    blocked = enum_choice("bounced.policy", "BlockReason")()
    return blocked + [r for r in enum_choice("bounced.dsn", "Reason")() if r not in blocked]


_FILTER_OPTIONS: dict[str, Any] = {
    "status": choice_option(
        "--status",
        "active, blocked or former_employee (repeatable).",
        enum_choice("bounced.policy", "State"),
    ),
    "reason": choice_option(
        "--reason",
        "Blocked reason (hard, returns, complaint, manual, ...) or last bounce reason "
        "(user_unknown, mailbox_full, ...); repeatable.",
        _reasons,
    ),
    "bounce_class": choice_option(
        "--class",
        "Class of the last return: hard, soft.",
        enum_choice("bounced.dsn", "BounceClass"),
    ),
    "domain": Annotated[list[str] | None, typer.Option("--domain", help="Recipient domain.")],
    "since": Annotated[
        str | None,
        typer.Option("--since", help="Blocked or last returned since (date, or 7d ago)."),
    ],
    "until": Annotated[str | None, typer.Option("--until", help="... and before (date or 7d).")],
    "min_returns": Annotated[
        int | None, typer.Option("--min-returns", min=0, help="At least this many returns.")
    ],
    "selection": Annotated[str | None, typer.Option("--selection", help="Members of it only.")],
}


def _filters(values: dict[str, Any]) -> "Filters":
    from bounced.db.filters import Filters

    since, until = values.pop("since"), values.pop("until")
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return Filters(
        **given,
        since=point_in_time(since),
        until=point_in_time(until),
    )


def with_filters(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the list filter options; it receives them as `filters: Filters`.

    One definition for list, export and the selection commands, instead of the same
    eight options copied into each signature.
    """
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != "filters"]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
        for name, hint in _FILTER_OPTIONS.items()
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["filters"] = _filters({name: kwargs.pop(name) for name in _FILTER_OPTIONS})
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        k: v for k, v in func.__annotations__.items() if k != "filters"
    } | _FILTER_OPTIONS
    return wrapper


# --- commands ----------------------------------------------------------------------------------


def ingest_command(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Message files, directories, mbox files, Maildir folders, or - for stdin.",
            metavar="PATH...",
            show_default=False,
        ),
    ],
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            help="Processes: this one records, the others parse (2: one parser beside it;"
            " 1: it parses too); 0 = one per CPU.",
        ),
    ] = 1,
    aside: Annotated[
        Path | None,
        typer.Option(
            "--aside",
            help="Copy messages that are not bounces or have no usable recipient here, "
            "each with a .reason file.",
        ),
    ] = None,
) -> None:
    """Parse returned messages and record them in the store."""
    from bounced.inputs.batch import Parsed, parse_sources
    from bounced.inputs.sources import Skipped, find_sources, input_size

    if aside is not None:
        writable_folder(aside, "--aside")
    totals = dict.fromkeys(("rows", "new blocks", "duplicates", "not bounces", "kept aside"), 0)
    parsed = closing(
        # The workers read the files they parse: this process only records.
        parse_sources(find_sources(paths), jobs or os.cpu_count() or 1, parse_here=False)
    )
    feedback = Feedback(progress=True, summary=False, total=lambda: input_size(paths))
    with suppressions(ctx) as sup, feedback, parsed as results:

        def reports() -> Iterator[tuple[str, bytes, Any]]:
            for result in results:
                if isinstance(result, Parsed):
                    feedback.advance(len(result.message.raw))
                    yield result.message.name, result.message.raw, result.report
                elif isinstance(result, Skipped):
                    feedback.skip(result.size)
                else:
                    feedback.unreadable(result.name, result.reason)

        raws: dict[str, bytes] = {}
        for ingested in sup.ingest_reports(_remember(reports(), raws, aside is not None)):
            _tally(totals, ingested, aside, raws.pop(ingested.source, b""))
    parts = [f"{feedback.messages} messages"] + [f"{n} {what}" for what, n in totals.items()]
    unreadable = f", {feedback.failures} unreadable" if feedback.failures else ""
    say(", ".join(parts) + unreadable + feedback.not_mail())
    raise typer.Exit(1 if feedback.failures else 0)


def _remember(
    items: Iterator[tuple[Any, ...]], raws: dict[str, bytes], keep: bool
) -> Iterator[tuple[Any, ...]]:
    """Pass items through, keeping the bytes of the last batch when they may go aside."""
    for name, raw, report in items:
        if keep:
            raws[name] = raw
        yield name, raw, report


def _tally(totals: dict[str, int], ingested: Any, aside: Path | None, raw: bytes) -> None:
    from bounced.suppressions import Outcome

    totals["rows"] += len(ingested.rows)
    totals["new blocks"] += len(ingested.new_blocks)
    totals["duplicates"] += sum(1 for r in ingested.rows if r.duplicate)
    if ingested.outcome is Outcome.NOT_BOUNCE:
        totals["not bounces"] += 1
    problems = ingested.problems
    if ingested.outcome in (Outcome.NOT_BOUNCE, Outcome.UNREADABLE) or problems:
        reason = "; ".join(problems) or ingested.outcome.value.replace("_", " ")
        if ingested.outcome is not Outcome.NOT_BOUNCE:
            say(f"{ingested.source}: {reason}")
        if aside is not None:
            totals["kept aside"] += 1
            _keep_aside(aside, ingested.source, raw, reason)


def _keep_aside(folder: Path, name: str, raw: bytes, reason: str) -> None:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-150:]
    (folder / f"{safe}.eml").write_bytes(raw)
    (folder / f"{safe}.eml.reason").write_text(reason + "\n", encoding="utf-8")


def check_command(
    ctx: typer.Context,
    addresses: AddressArgs = None,
    file: FileOption = None,
    output_format: FormatOption = None,
) -> None:
    """May these addresses be mailed? Exit 0 when all may, 1 when any may not."""
    inputs = Inputs(addresses, file)
    refused = 0

    def rows(checks: Iterator[Any]) -> Iterator[tuple[str, ...]]:
        nonlocal refused
        for index, (address, normalized, sendable, state, reason) in enumerate(checks):
            if normalized is None:
                say(f"{inputs.origin(index)}: {reason}")
                verdict = "invalid"
            else:
                verdict = "send" if sendable else "blocked"
            if not sendable:
                refused += 1
            yield address, verdict, state, reason  # in CHECK_COLUMNS order

    # A million short-lived, acyclic tuples and dicts: the cyclic collector would only
    # scan them again and again (about a tenth of the run).
    gc.disable()
    with suppressions(ctx, read_only=True) as sup:
        checks = sup.check_many(inputs)
        first = next(checks, None)
        if first is None:
            say("no addresses given (arguments or --file)")
            raise typer.Exit(2)
        print_rows(output_format, CHECK_COLUMNS, rows(itertools.chain([first], checks)), raw=True)
    raise typer.Exit(1 if refused else 0)


@with_filters
def list_command(
    ctx: typer.Context, output_format: FormatOption = None, filters: Any = None
) -> None:
    """Addresses in the store, filtered."""
    with suppressions(ctx) as sup:
        _print_addresses(output_format, sup.list(filters))


#: What the table of `list` and `selection show` shows: a dozen columns do not fit a
#: terminal; the data formats carry every column.
LIST_TABLE_COLUMNS = ("address", "state", "blocked_reason", "returns", "last_reason", "last_status")


def _print_addresses(fmt: Format | None, rows: Iterator[dict[str, Any]]) -> None:
    """Address rows, as `list` prints them; a table with no rows says so (on stderr)."""
    from bounced.db.reports import LIST_COLUMNS

    fmt = fmt or default_format(sys.stdout)
    count = print_rows(fmt, LIST_COLUMNS, rows, table_columns=LIST_TABLE_COLUMNS)
    if count == 0 and fmt is Format.TABLE:
        say("no addresses match")


ExportFormat = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
]


#: `bounced export` also writes the blocked list as a sending provider's import takes it.
ExportOrProviderFormat = Annotated[
    ExportTarget,
    typer.Option(
        "--format",
        "-f",
        help="Output format, or a provider's suppression import: ses, mailgun, postmark, sendgrid.",
    ),
]


@with_filters
def export_command(
    ctx: typer.Context,
    output: OutputOption = None,
    output_format: ExportOrProviderFormat = ExportTarget.CSV,
    filters: Any = None,
) -> None:
    """Write the filtered addresses to a file or stdout, streaming."""
    if output_format in EXPORT_CHOICES:
        export_to_provider(ctx, filters, output_format.value, output)
        return
    _export(ctx, filters, Format(output_format.value), output)


def _export(ctx: typer.Context, filters: Any, fmt: Format, output: Path | None) -> None:
    if output is not None:
        output_file(output)
    with suppressions(ctx) as sup:
        if filters.selection:
            sup.require_selection(filters.selection)  # before the file is created
        if output is None:
            with buffered_stdout() as out:
                count = sup.export(out, filters, fmt)
        else:
            try:
                stream = output.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                say(f"--output {output}: {exc.strerror or exc}")
                raise typer.Exit(2) from None
            with stream as out:
                count = sup.export(out, filters, fmt)
    say(f"exported {count} addresses")


def show_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The address.", show_default=False)],
    output_format: FormatOption = None,
) -> None:
    """State of one address and its timeline of bounces and admin actions."""
    from bounced.suppressions import plain

    with suppressions(ctx) as sup:
        shown = sup.show(address)
    state = plain(shown["address"])
    timeline = sorted(_timeline(shown), key=lambda row: row["at"])
    fmt = output_format or default_format(sys.stdout)
    if fmt is Format.JSON:
        keep = ("state", "blocked_reason", "returns", "first_return_at", "last_return_at")
        summary = {k: state[k] for k in ("address", *keep, "blocked_at")}
        summary |= {"allowed": shown["allowed"], "selections": shown["selections"]}
        write_document({**summary, "timeline": [plain(r) for r in timeline]}, sys.stdout)
        return
    if fmt is Format.TABLE:
        lines = [
            f"{state['address']}: {state['state']}"
            + (f" ({state['blocked_reason']})" if state["blocked_reason"] else ""),
            f"returns: {state['returns']}, first {state['first_return_at'] or '-'}, "
            f"last {state['last_return_at'] or '-'}, blocked at {state['blocked_at'] or '-'}",
            f"allow-listed: {'yes' if shown['allowed'] else 'no'}; "
            f"selections: {', '.join(shown['selections']) or '-'}",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    print_rows(fmt, TIMELINE_COLUMNS, timeline)


def _timeline(shown: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for e in shown["events"]:
        detail = " ".join(x for x in (e["original_message_id"], e["diagnostic"]) if x)
        what = "return" if e["counts"] else "bounce"
        yield {
            "at": e["received_at"],
            "what": what,
            "kind": e["kind"],
            "reason": e["reason"],
            "status": e["status"],
            "detail": detail,
            "source": e["source"],
        }
    for a in shown["audit"]:
        yield {
            "at": a["at"],
            "what": "admin",
            "kind": a["action"],
            "actor": a["actor"],
            "detail": a["detail"],
        }


def _admin(
    ctx: typer.Context,
    addresses: list[str] | None,
    file: str | None,
    verb: str,
    act: Callable[..., Any],
) -> None:
    """The shape of every admin action: collect, act, report, exit code."""
    with suppressions(ctx) as sup:
        collected = _collect(sup.normalize, addresses, file)
        result = act(sup, collected.addresses)
    _finish(len(result.done), verb, result.unknown, collected.invalid)


def unmark_command(
    ctx: typer.Context, addresses: AddressArgs = None, file: FileOption = None
) -> None:
    """Remove the bounce mark: unblock and reset the count (the history stays)."""
    _admin(ctx, addresses, file, "unmarked", lambda sup, a: sup.unmark(a))


def block_command(
    ctx: typer.Context,
    addresses: AddressArgs = None,
    file: FileOption = None,
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")] = "",
) -> None:
    """Block addresses by hand."""
    _admin(ctx, addresses, file, "blocked", lambda sup, a: sup.block(a, note=note))


def former_employee_command(
    ctx: typer.Context,
    addresses: AddressArgs = None,
    file: FileOption = None,
    undo: Annotated[bool, typer.Option("--undo", help="They are back: undo the mark.")] = False,
) -> None:
    """Mark addresses of people who left (blocked with their own state)."""
    verb = "restored" if undo else "marked as former employees"
    _admin(ctx, addresses, file, verb, lambda sup, a: sup.former_employee(a, undo=undo))


def delete_command(
    ctx: typer.Context,
    addresses: AddressArgs = None,
    file: FileOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Erase addresses and their whole history (asks first unless --yes)."""
    if not yes:
        if file == "-" or not sys.stdin.isatty():
            say("delete erases history: confirm with --yes")
            raise typer.Exit(2)
        count = len(addresses or ()) if file is None else "the listed"
        typer.confirm(f"Erase {count} address(es) and all their history?", abort=True)
    _admin(ctx, addresses, file, "deleted", lambda sup, a: sup.delete(a))


def allow_command(
    ctx: typer.Context,
    entries: Annotated[
        list[str] | None,
        typer.Argument(help="Addresses, or domains as @example.com.", metavar="ADDR|@DOMAIN..."),
    ] = None,
    file: FileOption = None,
    remove: Annotated[bool, typer.Option("--remove", help="Take them off the list.")] = False,
    show_list: Annotated[bool, typer.Option("--list", help="Show the allow-list.")] = False,
    output_format: FormatOption = None,
) -> None:
    """Addresses and domains that are never blocked automatically."""
    with suppressions(ctx) as sup:
        if show_list:
            print_rows(output_format, ("entry", "actor", "created_at"), sup.allow_list())
            return
        collected = _collect(sup.allow_entry, entries, file)
        if not collected.addresses:  # every entry refused (each said why)
            raise typer.Exit(1)
        changed = sup.allow(collected.addresses, remove=remove)
    done = f"{len(changed)} of {len(collected.addresses)} entries"
    say(f"{'removed' if remove else 'allowed'} {done}")
    if collected.invalid:
        raise typer.Exit(1)


# --- selections ----------------------------------------------------------------------------


NameArg = Annotated[str, typer.Argument(help="Selection name.", show_default=False)]


@selection_app.command("add")
@with_filters
def selection_add(
    ctx: typer.Context,
    name: NameArg,
    addresses: AddressArgs = None,
    file: FileOption = None,
    where: Annotated[
        bool,
        typer.Option("--where", help="Add every address matching the filter options."),
    ] = False,
    filters: Any = None,
) -> None:
    """Add addresses (arguments, --file, or --where with list filters) to a selection."""
    if where and (addresses or file):
        say("--where adds the addresses matching the filters: give no addresses or --file")
        raise typer.Exit(2)
    with suppressions(ctx) as sup:
        if where:
            added = sup.selection_add_where(name, filters)
            say(f"added {added} addresses to {name}")
            return
        collected = _collect(sup.normalize, addresses, file)
        added = sup.selection_add(name, collected.addresses)
    _finish(added, f"added to {name}:", invalid=collected.invalid)


@selection_app.command("remove")
def selection_remove(
    ctx: typer.Context, name: NameArg, addresses: AddressArgs = None, file: FileOption = None
) -> None:
    """Remove addresses from a selection."""
    with suppressions(ctx) as sup:
        collected = _collect(sup.normalize, addresses, file)
        removed = sup.selection_remove(name, collected.addresses)
    _finish(removed, f"removed from {name}:", invalid=collected.invalid)


@selection_app.command("list")
def selection_list(ctx: typer.Context, output_format: FormatOption = None) -> None:
    """Selections and how many members each has."""
    with suppressions(ctx) as sup:
        print_rows(output_format, ("name", "members", "created_at"), sup.selections())


@selection_app.command("show")
@with_filters
def selection_show(
    ctx: typer.Context, name: NameArg, output_format: FormatOption = None, filters: Any = None
) -> None:
    """The members of a selection, as `bounced list` shows them."""
    from dataclasses import replace

    with suppressions(ctx) as sup:
        _print_addresses(output_format, sup.list(replace(filters, selection=name)))


@selection_app.command("export")
@with_filters
def selection_export(
    ctx: typer.Context,
    name: NameArg,
    output: OutputOption = None,
    output_format: ExportFormat = Format.CSV,
    filters: Any = None,
) -> None:
    """Write the members of a selection to a file or stdout, streaming."""
    from dataclasses import replace

    _export(ctx, replace(filters, selection=name), output_format, output)


# --- reports -------------------------------------------------------------------------------


def stats_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="Returns per day: how far back.")] = 30,
    output_format: FormatOption = None,
) -> None:
    """Counts by state, reason and domain; returns per day; the sender's own problems."""
    with suppressions(ctx) as sup:
        stats = sup.stats(days)
        sender = sup.deliverability(datetime.now(UTC) - timedelta(days=days))
    rows = [
        {"group": group, "key": key, "count": count}
        for group, pairs in stats.items()
        for key, count in pairs
    ]
    rows += [
        {"group": "sender_side", "key": f"{r['domain']} {r['reason']}", "count": r["messages"]}
        for r in sender
    ]
    print_rows(output_format, ("group", "key", "count"), rows)


def deliverability_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Since when: a date, or a duration back (7d).")
    ] = "30d",
    output_format: FormatOption = None,
) -> None:
    """Sender-side failures per receiving domain: reputation, content, volume, auth."""
    with suppressions(ctx) as sup:
        rows = sup.deliverability(point_in_time(since))
    columns = ("domain", "reason", "messages", "first_at", "last_at")
    print_rows(output_format, columns, rows)


def audit_command(
    ctx: typer.Context,
    address: Annotated[
        str | None, typer.Option("--address", help="Entries about this address only.")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Entries by this actor only (see bounced --actor)."),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option("--action", help="block, unmark, delete, allow, ... (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Since when: a date, or a duration back (7d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="... and before (date or 7d).")
    ] = None,
    output_format: FormatOption = None,
) -> None:
    """The audit log: who did what to which address, and when, oldest first."""
    from bounced.db.audit_log import AUDIT_COLUMNS

    with suppressions(ctx) as sup:
        rows = sup.audit(
            address=address,
            actor=actor,
            action=action or (),
            since=point_in_time(since),
            until=point_in_time(until),
        )
        print_rows(output_format, AUDIT_COLUMNS, rows)


@policy_app.command("apply")
def policy_apply(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change.")
    ] = False,
    output_format: FormatOption = None,
) -> None:
    """Recompute every address from its history under the current [policy] settings."""
    with suppressions(ctx) as sup:
        changes = sup.apply_policy(dry_run=dry_run)
    rows = [
        {
            "address": c.address,
            "state_before": c.before.state.value,
            "reason_before": c.before.blocked_reason or "",
            "returns_before": c.before.returns,
            "state_after": c.after.state.value,
            "reason_after": c.after.blocked_reason or "",
            "returns_after": c.after.returns,
        }
        for c in changes
    ]
    print_rows(output_format, tuple(rows[0]) if rows else ("address",), rows)
    say(f"{len(changes)} addresses {'would change' if dry_run else 'changed'}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the database schema to this version of bounced."""
    from bounced.db.store import Store
    from bounced.errors import BouncedError
    from bounced.suppressions import Suppressions

    settings = command_settings(ctx)
    try:
        store = Store.open(settings, migrate=False)
        try:
            revision = Suppressions(store, settings).upgrade()
        finally:
            store.close()
    except BouncedError as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    say(f"database schema at revision {revision}")


@db_app.command("prune")
def db_prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Count the events that would go (and name the partitions); delete none.",
        ),
    ] = False,
) -> None:
    """Delete bounce events older than [store] keep_events, in batches (PostgreSQL: the
    months wholly past it go as whole partitions). No address's state or count changes;
    the history they held goes (see the README)."""
    from bounced.errors import ConfigError

    with suppressions(ctx) as sup:
        try:
            pruned = sup.prune(dry_run=dry_run)
        except ConfigError as exc:  # a setting, not the input: exit 2
            say(str(exc))
            raise typer.Exit(2) from None
    if pruned.before is None:
        say("[store] keep_events is 0: every event is kept")
        return
    before = pruned.before.isoformat(timespec="seconds")
    months = f", with the partitions {', '.join(pruned.partitions)}" if pruned.partitions else ""
    if dry_run:
        say(f"{pruned.events} events from before {before} would be deleted{months}")
    else:
        say(
            f"{pruned.events} events from before {before} deleted"
            f" in {pruned.batches} transactions{months}"
        )


def register(app: typer.Typer) -> None:
    """Add the admin commands to `app`."""
    app.command("ingest")(ingest_command)
    app.command("check")(check_command)
    app.command("list")(list_command)
    app.command("export")(export_command)
    app.command("show")(show_command)
    app.command("unmark")(unmark_command)
    app.command("block")(block_command)
    app.command("former-employee")(former_employee_command)
    app.command("delete")(delete_command)
    app.command("allow")(allow_command)
    app.command("stats")(stats_command)
    app.command("deliverability")(deliverability_command)
    app.command("audit")(audit_command)
    app.add_typer(selection_app, name="selection")
    app.add_typer(policy_app, name="policy")
    app.add_typer(db_app, name="db")
