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
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TextIO

__all__ = ["Format", "Row", "default_format", "write_document", "write_rows"]

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


def _write_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """A rich table without the columns that are empty in every row, to save width.

    Values are shown as text, never as console markup; long values fold, headers do not.
    """
    cells = [[_text(row.get(column)) for column in columns] for row in rows]
    shown = [i for i in range(len(columns)) if any(line[i] for line in cells)]
    from rich import box  # imported for tables only: the data formats start faster without
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, highlight=False)
    for i in shown:
        table.add_column(columns[i], overflow="fold", min_width=len(columns[i]))
    for line in cells:
        table.add_row(*(line[i] for i in shown))
    Console(file=out, markup=False, emoji=False, highlight=False).print(table)
    return len(cells)


def _json_object(columns: Sequence[str], row: Mapping[str, Any]) -> str:
    return json.dumps({column: row.get(column) for column in columns}, ensure_ascii=False)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_WRITERS: dict[Format, Callable[[Sequence[str], Iterable[Mapping[str, Any]], TextIO], int]] = {
    Format.JSON: _write_json,
    Format.NDJSON: _write_ndjson,
}
