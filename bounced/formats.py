"""Writers for rows of any kind: a rich table for people, JSON, NDJSON and CSV for programs.

Every command that prints rows (parse, and later list and export) goes through
`write_rows` with its own column names, so the formats behave the same everywhere.
A row is a mapping from column name to value; keys outside the columns are ignored
and missing ones are written empty. A row may also be a tuple of the values in
column order (cheaper when there are millions: `bounced check`). NDJSON, CSV and
JSON stream: one row is in memory at a time. The table needs every row to size its
columns, so it holds them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TextIO

__all__ = [
    "PATH_COLUMNS",
    "Format",
    "Row",
    "default_format",
    "shorten_path",
    "write_document",
    "write_rows",
]

Row = Mapping[str, Any] | tuple[Any, ...]


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


def default_format(out: TextIO) -> Format:
    """A table for a person at a terminal, NDJSON for a pipe or a file."""
    return Format.TABLE if out.isatty() else Format.NDJSON


def write_rows(
    fmt: Format,
    columns: Sequence[str],
    rows: Iterable[Row],
    out: TextIO,
    *,
    table_columns: Sequence[str] | None = None,
) -> int:
    """Write `rows` to `out` as `fmt`, with exactly `columns` in that order; return the count.

    `table_columns` narrows the table to what a person needs at a glance (a dozen
    columns do not fit a terminal); the data formats always carry every column.
    """
    if fmt is Format.CSV:
        return _write_csv(columns, rows, out)
    mappings = (dict(zip(columns, r, strict=True)) if isinstance(r, tuple) else r for r in rows)
    if fmt is Format.TABLE:
        return _write_table(table_columns or columns, mappings, out)
    return _WRITERS[fmt](columns, mappings, out)


def write_document(document: Any, out: TextIO, *, indent: int | None = 2) -> None:
    """One JSON document rather than rows (a `show`: one thing and its history);
    `indent` None puts it on one line, as NDJSON would."""
    json.dump(document, out, indent=indent)
    out.write("\n")


def _write_ndjson(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(_json_object(columns, row) + "\n")
        count += 1
    return count


def _write_json(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """A JSON array written element by element, so it streams like NDJSON."""
    count = 0
    for row in rows:
        out.write(("[\n" if count == 0 else ",\n") + _json_object(columns, row))
        count += 1
    out.write("[]\n" if count == 0 else "\n]\n")
    return count


def _write_csv(columns: Sequence[str], rows: Iterable[Row], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        # csv writes None as empty and str() of anything else, as _text does (but in C).
        writer.writerow(row if isinstance(row, tuple) else [row.get(c) for c in columns])
        count += 1
    return count


#: Columns that hold file paths: shortened from the left in a table (the tail names it).
PATH_COLUMNS = frozenset({"file", "source"})
#: The widest a one-word value (an address, a path, a Message-ID) gets in a table...
_WORD_WIDTH = 32
#: ...the narrowest a column is squeezed to (its header may need more), and the
#: narrowest a column of sentences gets.
_MIN_WORD = 6
_MIN_TEXT = 20
#: Spaces between two columns (padding collapsed, no edge).
_GAP = 2


def _write_table(columns: Sequence[str], rows: Iterable[Row], out: TextIO) -> int:
    """A rich table without the columns that are empty in every row, to save width.

    Values are shown as text, never as console markup. Words stay whole: a column of
    one-word values (states, codes, addresses) keeps one line per row and ends what
    does not fit in an ellipsis; a column of sentences wraps between words; file
    paths keep their tail (`…/mail/123.eml`). The one-word columns are narrowed,
    widest first, until the table fits the console.
    """
    cells = [[_text(_mapping(row).get(column)) for column in columns] for row in rows]
    shown = [i for i in range(len(columns)) if any(line[i] for line in cells)]
    from rich import box  # imported for tables only: the data formats start faster without
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, markup=False, emoji=False, highlight=False)
    texts = {i for i in shown if any(" " in line[i] for line in cells)}
    for line in cells:
        for i in shown:
            if i not in texts and _UTC_TIME.fullmatch(line[i]):
                line[i] = line[i][:10] + " " + line[i][11:16]  # a time, to the minute (_MINUTE)
    widths = _word_widths(columns, cells, [i for i in shown if i not in texts], texts, console)
    for i, width in widths.items():
        if columns[i] in PATH_COLUMNS:
            for line in cells:
                line[i] = shorten_path(line[i], width)
    table = Table(
        box=box.SIMPLE_HEAD,
        highlight=False,
        padding=(0, _GAP // 2),
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    for i in shown:
        if i in texts:  # sentences: wrap between words
            table.add_column(columns[i], overflow="ellipsis", min_width=_MIN_TEXT)
        else:
            table.add_column(columns[i], overflow="ellipsis", no_wrap=True, width=widths[i])
    for line in cells:
        table.add_row(*(line[i] for i in shown))
    console.print(table)
    return len(cells)


def _word_widths(
    columns: Sequence[str],
    cells: list[list[str]],
    words: list[int],
    texts: set[int],
    console: Any,
) -> dict[int, int]:
    """Widths of the one-word columns: each its widest value (at most _WORD_WIDTH),
    then the widest narrowed one at a time until the table fits the console (times
    are never cut: half a time says nothing)."""
    widths = {
        i: max(min(max(len(line[i]) for line in cells), _WORD_WIDTH), len(columns[i]))
        for i in words
    }
    floors = {
        i: widths[i]
        if all(_MINUTE.fullmatch(line[i]) for line in cells if line[i])
        else max(_MIN_WORD, min(len(columns[i]), widths[i]))
        for i in words
    }
    room = console.width - _GAP * (len(words) + len(texts) - 1) - _MIN_TEXT * len(texts)
    while sum(widths.values()) > room:
        widest = max(widths, key=lambda i: widths[i] - floors[i])
        if widths[widest] <= floors[widest]:
            break
        widths[widest] -= 1
    return widths


def shorten_path(path: str, width: int) -> str:
    """`path` in at most `width` characters, keeping its tail: `…/dsn/hard-01.eml`."""
    if len(path) <= width:
        return path
    tail = path[-(width - 1) :]
    cut = tail.find("/")
    return "…" + (tail[cut:] if 0 <= cut < len(tail) - 1 else tail)


#: A UTC time in ISO 8601, which a table shows to the minute (`2024-05-01 09:30`).
_MINUTE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:\+00:00|Z)")


#: One encoder for every row (json.dumps with options builds one per call).
_JSON = json.JSONEncoder(ensure_ascii=False)


def _json_object(columns: Sequence[str], row: Row) -> str:
    values = _mapping(row)
    return _JSON.encode({column: values.get(column) for column in columns})


def _mapping(row: Row) -> Mapping[str, Any]:
    """A row as a mapping: the table and JSON writers name their cells (a tuple row is
    only written `raw`, positionally, by csv and ndjson)."""
    if isinstance(row, tuple):
        raise TypeError("a tuple row can only be written raw")
    return row


def _text(value: Any) -> str:
    """A cell as a terminal shows it: control characters (a NUL or an escape in a
    message's header) are shown as `?`, never sent to the terminal."""
    text = "" if value is None else str(value)
    return text if text.isprintable() else _CONTROL.sub("?", text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


_WRITERS: dict[Format, Callable[[Sequence[str], Iterable[Mapping[str, Any]], TextIO], int]] = {
    Format.JSON: _write_json,
    Format.NDJSON: _write_ndjson,
}
