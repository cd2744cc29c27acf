"""The cleaned list out: every input column in the input order, then `normalized`,
`status`, `reason` and `detail`; as CSV (the input's delimiter), NDJSON or XLSX.

CSV for a list that came from a spreadsheet program (a BOM, Windows-1252, UTF-16)
is written as UTF-8 with a BOM, which those programs open with the right letters;
plain UTF-8 stays plain.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

from bounced.clean.kinds import OutputFormat
from bounced.clean.pipeline import Cleaned

__all__ = ["ADDED", "OutputFormat", "RowWriter", "cells_of", "open_writer", "output_columns"]

#: The columns `bounced clean` adds after the input's own.
ADDED = ("normalized", "status", "reason", "detail")


class RowWriter(Protocol):
    def write(self, cells: Sequence[Any]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def output_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The input's columns and ours; one of ours whose name the input already uses
    gets `_clean` after it, so no input column is overwritten."""
    taken = set(columns)
    return (*columns, *(f"{c}_clean" if c in taken else c for c in ADDED))


def cells_of(result: Cleaned, width: int) -> list[Any]:
    """One output row: the input cells (`width` of them) and the verdict. An unreadable
    row's cells beyond the width go into its detail, so nothing of it is lost."""
    cells = list(getattr(result.row, "cells", (result.address,)))
    detail = result.detail
    if len(cells) > width:
        detail += " | extra cells: " + " | ".join(map(str, cells[width:]))
        cells = cells[:width]
    cells += [""] * (width - len(cells))
    return [*cells, result.normalized, result.status.value, result.reason, detail]


def open_writer(
    fmt: OutputFormat,
    out: BinaryIO,
    columns: Sequence[str],
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> RowWriter:
    """A writer of rows of `columns` to the binary stream `out` (closed by the caller)."""
    if fmt is OutputFormat.XLSX:
        return _XlsxWriter(out, columns)
    text = io.TextIOWrapper(out, encoding="utf-8-sig" if bom else "utf-8", newline="")
    if fmt is OutputFormat.NDJSON:
        return _NdjsonWriter(text, columns)
    return _CsvWriter(text, columns, delimiter)


class _TextWriter:
    """Text rows into the binary stream; `close` leaves the stream open."""

    def __init__(self, out: io.TextIOWrapper) -> None:
        self._out = out

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.flush()
        self._out.detach()


class _CsvWriter(_TextWriter):
    def __init__(self, out: io.TextIOWrapper, columns: Sequence[str], delimiter: str) -> None:
        super().__init__(out)
        self._writer = csv.writer(out, delimiter=delimiter)
        self._writer.writerow(columns)

    def write(self, cells: Sequence[Any]) -> None:
        self._writer.writerow(cells)


class _NdjsonWriter(_TextWriter):
    def __init__(self, out: io.TextIOWrapper, columns: Sequence[str]) -> None:
        super().__init__(out)
        self._columns = tuple(columns)

    def write(self, cells: Sequence[Any]) -> None:
        row = dict(zip(self._columns, cells, strict=True))
        self._out.write(json.dumps(row, ensure_ascii=False) + "\n")


class _XlsxWriter:
    """openpyxl's write-only workbook: rows go to a temporary file as they come; the
    workbook is assembled into `out` on close."""

    def __init__(self, out: BinaryIO, columns: Sequence[str]) -> None:
        from openpyxl import Workbook

        self._out = out
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("cleaned")
        self._sheet.append(list(columns))

    def write(self, cells: Sequence[Any]) -> None:
        self._sheet.append(list(cells))

    def flush(self) -> None:
        """Nothing to flush: a workbook is only whole at the end."""

    def close(self) -> None:
        self._book.save(self._out)
