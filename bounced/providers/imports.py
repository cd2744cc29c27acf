"""Providers' suppression lists read into bounce rows, and recorded (`bounced import`,
`POST /v1/imports/{provider}`).

Formats, each recognised by its shape:

- `ses`: SES suppressed destinations: CSV `address,BOUNCE|COMPLAINT` (no header, as
  an SES import job takes it), its NDJSON `{"emailAddress", "reason"}` lines, or a
  ListSuppressedDestinations answer (`{"SuppressedDestinationSummaries": [...]}`).
- `mailgun`: the bounces (`address,code,error,created_at`), complaints
  (`address,created_at`) or unsubscribes (`address,tags,created_at`) CSV.
- `sendgrid`: the bounces and blocks (`email,created,reason,status`), spam reports
  (`email,created,ip`) or invalid emails (`email,created,reason`) CSV.
- `postmark`: a suppression dump (`{"Suppressions": [{"EmailAddress",
  "SuppressionReason", "Origin", "CreatedAt"}]}`), or the same columns as CSV.
- `csv`: any CSV with a header holding `address`, `reason` and `date` columns, or
  others named by `columns` (`{"address": "Email"}`). A reason on the taxonomy is
  taken as it is; one of esp.toml's `csv` types (hard, soft, complaint, ...) as that
  type; any other text as the diagnostic of a bounce (so "550 5.1.1 user unknown"
  reads as it would in a DSN).

Each row goes through the same contest as a webhook event (`facts.bounce_of`): a
provider's "hard bounce" blocks, with the provider's words kept as the diagnostic.
Every row of a format has the notice `import:<format>`, so importing a file twice,
or another file naming the same address for the same thing, records nothing new.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bounced.dsn import Bounce, Kind, Reason
from bounced.errors import UnreadableImport
from bounced.providers.esp import EspType
from bounced.providers.facts import NotUnderstood, Said, bounce_of, obj, objects

if TYPE_CHECKING:
    from bounced.suppressions import Suppressions

__all__ = [
    "CHUNK",
    "GENERIC_COLUMNS",
    "IMPORT_FORMATS",
    "Entry",
    "Imported",
    "entries",
    "parse_columns",
    "record",
]

IMPORT_FORMATS = ("ses", "mailgun", "sendgrid", "postmark", "csv")

#: Rows recorded per `ingest_bounces` item, so per store transaction: each row of an
#: import has a message key of its own, and the store looks the batch's keys up by
#: address and key together, so a batch costs more than linearly (benches/imports.py:
#: 250 rows measured faster than 100 or 1000 on SQLite, first import and re-import).
CHUNK = 250

#: The generic CSV's columns, by default named as themselves.
GENERIC_COLUMNS = ("address", "reason", "date")

#: What one reader yields per row: its place, what it says, and the type when the
#: row named it directly (a taxonomy reason in a generic CSV).
_Row = tuple[str, Said, EspType | None]


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a file: its place (`line 17`, `item 3`) and its bounce, or why not."""

    where: str
    bounce: Bounce | None
    problem: str = ""


@dataclass(slots=True)
class Imported:
    """What an import did: rows recorded, rows already known, rows skipped and why."""

    imported: int = 0
    known: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.imported + self.known + len(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "already_known": self.known,
            "skipped": [{"where": where, "why": why} for where, why in self.skipped],
        }


def _csv(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank rows."""
    reader = csv.reader(lines)
    for row in reader:
        if any(cell.strip() for cell in row):
            yield reader.line_num, [cell.strip() for cell in row]


def _table(lines: Iterable[str], wanted: Mapping[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """The rows of a CSV with a header as {our name: cell}; `wanted` maps our names to
    the file's columns (any case). The header is read first: `header(lines)`."""
    rows = _csv(lines)
    first = next(rows, None)
    if first is None:
        return
    header = [h.lower().lstrip("\ufeff") for h in first[1]]
    found = {ours: header.index(t.lower()) for ours, t in wanted.items() if t.lower() in header}
    if "address" not in found:
        raise UnreadableImport(f"no {wanted['address']!r} column in the header {first[1]}")
    for number, cells in rows:
        yield f"line {number}", {k: cells[i] if i < len(cells) else "" for k, i in found.items()}


def _header(lines: Iterator[str]) -> tuple[set[str], Iterator[str]]:
    """The lower-case column names of the first line, and all the lines again."""
    first = next(lines, "")
    names = {n.strip().lower().lstrip("\ufeff") for n in next(csv.reader([first]), [])}
    return names, itertools.chain([first], lines)


def _json_items(lines: Iterator[str], key: str, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        document = json.loads("".join(lines))
    except ValueError as exc:
        raise UnreadableImport(f"not {what}: {exc}") from None
    for index, item in enumerate(objects(obj(document).get(key)), 1):
        yield f"item {index}", item


def _ses(lines: Iterator[str]) -> Iterator[_Row]:
    first = next(lines, "")
    lines = itertools.chain([first], lines)
    if first.lstrip().startswith("{") and '"emailAddress"' not in first:
        items = _json_items(lines, "SuppressedDestinationSummaries", "an SES suppression list")
        for where, item in items:
            keys = (f"suppressed:{str(item.get('Reason', '')).upper()}",)
            when = str(item.get("LastUpdateTime", ""))
            yield where, Said(str(item.get("EmailAddress", "")), keys, arrival_date=when), None
        return
    if first.lstrip().startswith("{"):
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    item = obj(json.loads(line))
                except ValueError:
                    item = {}
                keys = (f"suppressed:{str(item.get('reason', '')).upper()}",)
                yield f"line {number}", Said(str(item.get("emailAddress", "")), keys), None
        return
    for number, cells in _csv(lines):
        if number == 1 and cells[0].lower() in ("emailaddress", "email", "address"):
            continue  # a header, although SES's own files have none
        reason = cells[1].upper() if len(cells) > 1 else ""
        yield f"line {number}", Said(cells[0], (f"suppressed:{reason}",)), None


def _mailgun(lines: Iterator[str]) -> Iterator[_Row]:
    names, lines = _header(lines)
    kind = "bounces" if names & {"code", "error"} else "complaints"
    if "tags" in names:
        kind = "unsubscribes"
    wanted = {"address": "address", "code": "code", "error": "error", "date": "created_at"}
    for where, row in _table(lines, wanted):
        code, error = row.get("code", ""), row.get("error", "")
        text = error if error.startswith(code) else f"{code} {error}".strip()
        said = Said(
            row["address"], (f"list:{kind}",), diagnostic=text, arrival_date=row.get("date", "")
        )
        yield where, said, None


def _sendgrid(lines: Iterator[str]) -> Iterator[_Row]:
    names, lines = _header(lines)
    # Bounces and blocks share their columns: the reason's text tells them apart.
    kind = (
        "bounces"
        if "status" in names
        else "invalid_emails"
        if "reason" in names
        else "spam_reports"
    )
    wanted = {"address": "email", "reason": "reason", "status": "status", "date": "created"}
    for where, row in _table(lines, wanted):
        said = Said(
            row["address"],
            (f"list:{kind}",),
            diagnostic=row.get("reason", ""),
            status=row.get("status", ""),
            arrival_date=row.get("date", ""),
        )
        yield where, said, None


def _postmark(lines: Iterator[str]) -> Iterator[_Row]:
    first = next(lines, "")
    lines = itertools.chain([first], lines)
    if first.lstrip().startswith("{"):
        items: Iterable[tuple[str, Mapping[str, Any]]] = _json_items(
            lines, "Suppressions", "a Postmark suppression dump"
        )
    else:
        names = ("EmailAddress", "SuppressionReason", "CreatedAt")
        wanted = {"address": "EmailAddress"} | {n: n for n in names}
        items = _table(lines, wanted)
    for where, item in items:
        keys = (f"suppressed:{item.get('SuppressionReason', '')}",)
        when = str(item.get("CreatedAt", ""))
        yield where, Said(str(item.get("EmailAddress", "")), keys, arrival_date=when), None


def _generic(lines: Iterator[str], columns: Mapping[str, str]) -> Iterator[_Row]:
    wanted = {name: columns.get(name, name) for name in GENERIC_COLUMNS}
    for where, row in _table(lines, wanted):
        reason, when = row.get("reason", ""), row.get("date", "")
        said = Said(row["address"], (reason.lower() or "bounce",), arrival_date=when)
        if reason in Reason._value2member_map_:
            esp = EspType("csv", reason, Kind.FAILED, Reason(reason), True, 1000)
            yield where, said, esp
        elif reason.lower() in _CSV_WORDS:
            yield where, said, None
        else:  # free text: a bounce, decided by what it says
            yield where, replace(said, keys=("bounce",), diagnostic=reason), None


#: The generic CSV's words for a reason (esp.toml's `csv` types).
_CSV_WORDS = frozenset({"hard", "bounce", "soft", "complaint", "spam", "unsubscribe", "suppressed"})

_READERS: dict[str, Callable[[Iterator[str]], Iterator[_Row]]] = {
    "ses": _ses,
    "mailgun": _mailgun,
    "sendgrid": _sendgrid,
    "postmark": _postmark,
}


def parse_columns(specs: Iterable[str]) -> dict[str, str]:
    """`address=Email` specs (`--column`) as {"address": "Email"}; ValueError for others."""
    found = {}
    for spec in specs:
        ours, sep, theirs = (part.strip() for part in spec.partition("="))
        if not sep or ours not in GENERIC_COLUMNS or not theirs:
            raise ValueError(f"{spec!r}: write address=COLUMN, reason=COLUMN or date=COLUMN")
        found[ours] = theirs
    return found


def entries(
    fmt: str, lines: Iterable[str], *, columns: Mapping[str, str] | None = None
) -> Iterator[Entry]:
    """The rows of a file of format `fmt`, streamed; a row that says nothing usable
    is an Entry with its problem. UnreadableImport when the file is none of the
    format's shapes."""
    if fmt not in IMPORT_FORMATS:
        raise UnreadableImport(f"unknown import format {fmt!r} ({', '.join(IMPORT_FORMATS)})")
    stream = iter(lines)
    rows = _generic(stream, columns or {}) if fmt == "csv" else _READERS[fmt](stream)
    for where, said, esp in rows:
        if not said.recipient.strip():
            yield Entry(where, None, "no address")
            continue
        try:
            bounce = bounce_of(fmt, said, f"import:{fmt}", esp=esp)
        except NotUnderstood:
            yield Entry(where, None, f"unknown reason {said.keys[0].partition(':')[2]!r}")
            continue
        if bounce is None:
            yield Entry(where, None, "nothing to record (its type is ignored)")
        else:
            yield Entry(where, bounce)


def record(
    sup: Suppressions,
    items: Iterable[Entry],
    fmt: str,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Imported:
    """Record the entries (rows of one import) through `Suppressions.ingest_bounces`, CHUNK
    rows at a time; `progress` is told the rows done so far after each. A dry run
    records nothing: every usable row is counted as imported."""
    done = Imported()
    source = f"import:{fmt}"
    for chunk in _chunks(items, CHUNK):
        usable = []
        for entry in chunk:
            if entry.bounce is None:
                done.skipped.append((entry.where, entry.problem))
            else:
                usable.append(entry)
        if dry_run:
            for entry in usable:
                try:
                    sup.normalize(entry.bounce.recipient)  # type: ignore[union-attr]
                    done.imported += 1
                except ValueError as exc:
                    done.skipped.append((entry.where, str(exc)))
        elif usable:
            bounces = [e.bounce for e in usable if e.bounce is not None]
            (result,) = sup.ingest_bounces([(source, source, bounces)])
            for entry, row in zip(usable, result.rows, strict=True):
                if row.problem:
                    done.skipped.append((entry.where, f"{row.recipient}: {row.problem}"))
                elif row.duplicate:
                    done.known += 1
                else:
                    done.imported += 1
        if progress is not None:
            progress(done.rows)
    return done


def _chunks(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
