"""Lists as marketing teams bring them: CSV or TSV in whatever encoding the spreadsheet
program chose, XLSX, or one address per line; from a file or standard input.

`open_table` looks at the start of the input once (the encoding, the delimiter,
a header, the address column) and then streams: rows come out as Records with
their line numbers, and a row that cannot be read (bytes that are not in the
encoding, more cells than the header, a broken quote) as an Unreadable with the
reason, so one bad line is reported and the rest is still read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import chain, islice
from typing import IO, Any

from bounced.addresses import normalize
from bounced.clean.pipeline import Record, Unreadable
from bounced.clean.rules import CleanRules, header_key, load_clean_rules
from bounced.errors import InvalidAddress, UnreadableInput

__all__ = ["SAMPLE", "Table", "detect_encoding", "open_table", "sniff_delimiter"]

#: Bytes looked at to choose the encoding and the delimiter.
SAMPLE = 64 * 1024
#: Rows looked at to find the header and the address column.
_SAMPLE_ROWS = 50
_DELIMITERS = (",", ";", "\t", "|")
_XLSX_MAGIC = b"PK\x03\x04"
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(slots=True)
class Table:
    """An opened input: what was detected, and its rows (an iterator, read once)."""

    kind: str  # csv, tsv, lines or xlsx
    encoding: str  # as detected ("" for xlsx)
    delimiter: str | None
    header: tuple[str, ...] | None
    column: int
    width: int
    rows: Iterator[Record | Unreadable]
    #: Input read so far and in all (bytes, or rows for XLSX); total None when unknown.
    total: int | None = None
    progress: list[int] = field(default_factory=lambda: [0])

    @property
    def columns(self) -> tuple[str, ...]:
        """The input's column names: its header, or `address` / `column_N` without one."""
        if self.header is not None:
            return self.header
        if self.width == 1:
            return ("address",)
        return tuple(f"column_{i}" for i in range(1, self.width + 1))


def detect_encoding(sample: bytes) -> str:
    """The encoding of a text file from its first bytes: a BOM says it (UTF-8, UTF-16);
    else UTF-8 when the bytes are valid UTF-8; else Windows-1252 (what spreadsheet
    programs write on Windows), or Latin-1 for the few bytes 1252 leaves undefined."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    try:  # a full sample may end inside a character
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < SAMPLE)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "windows-1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits the sample lines most consistently (the same count on
    most lines), or None for one value per line."""
    lines = [line for line in lines if line.strip()]
    best: tuple[float, int, str] | None = None
    for delimiter in _DELIMITERS:
        counts = [line.count(delimiter) for line in lines]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode == 0:
            continue
        score = (counts.count(mode) / len(counts), mode, delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    return best[2] if best else None


def open_table(
    stream: IO[bytes],
    *,
    name: str = "",
    column: str | int | None = None,
    size: int | None = None,
    rules: CleanRules | None = None,
) -> Table:
    """Open a list for reading. `column` is a header name or a 1-based number (else the
    header's address column, else the first column holding addresses). `size` (bytes)
    lets progress say how much is left. UnreadableInput when nothing can be read."""
    rules = rules or load_clean_rules()
    sample = stream.read(SAMPLE)
    if sample.startswith(_XLSX_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return _xlsx(sample, stream, column, rules)
    encoding = detect_encoding(sample)
    progress = [0]
    total = size
    if encoding == "utf-16":
        lines = _utf16_lines(sample, stream, progress)
    else:
        lines = _decoded_lines(_byte_lines(sample, stream, progress), encoding)
    head = [text for text, _ in islice(_sample_lines(sample, encoding), 30)]
    tsv = name.lower().endswith(".tsv")
    delimiter = "\t" if tsv else sniff_delimiter(head)
    rows = _csv_rows(lines, delimiter) if delimiter else _line_rows(lines)
    kind = "tsv" if delimiter == "\t" else "csv" if delimiter else "lines"
    return _table(kind, encoding, delimiter, rows, column, rules, total, progress)


def _table(
    kind: str,
    encoding: str,
    delimiter: str | None,
    rows: Iterator[Record | Unreadable],
    column: str | int | None,
    rules: CleanRules,
    total: int | None,
    progress: list[int],
) -> Table:
    first = list(islice(rows, _SAMPLE_ROWS))
    records = [r for r in first if isinstance(r, Record)]
    head = records[0].cells if records else ()
    header = None if any(_is_address(c) for c in head) or not head else head
    body = records[1:] if header is not None else records
    index = _column(column, header, body, rules)
    width = len(header) if header is not None else max((len(r.cells) for r in records), default=1)
    if header is not None:
        first.remove(records[0])
    if not 0 <= index < width:
        raise UnreadableInput(f"column {index + 1}: the input has {width} column(s)")
    rows = _fitted(chain(first, rows), width)
    return Table(kind, encoding, delimiter, header, index, width, rows, total, progress)


def _column(
    column: str | int | None,
    header: tuple[str, ...] | None,
    body: list[Record],
    rules: CleanRules,
) -> int:
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit()):
        return int(column) - 1
    if column is not None:
        names = [h.strip().lower() for h in header or ()]
        wanted = column.strip().lower()
        if wanted in names:
            return names.index(wanted)
        raise UnreadableInput(f"no column named {column!r} (the header has {list(header or ())})")
    if header is not None:
        for i, cell in enumerate(header):
            if header_key(cell) in rules.address_headers:
                return i
    width = max((len(r.cells) for r in body), default=1)
    for i in range(width):
        if any(i < len(r.cells) and _is_address(r.cells[i]) for r in body):
            return i
    return 0


def _is_address(cell: str) -> bool:
    if "@" not in cell:
        return False
    try:
        normalize(cell)
    except InvalidAddress:
        return False
    return True


def _fitted(rows: Iterator[Record | Unreadable], width: int) -> Iterator[Record | Unreadable]:
    """Rows of exactly `width` cells: short ones padded (a spreadsheet drops empty
    trailing cells); longer ones are unreadable (a delimiter inside an unquoted value)."""
    for row in rows:
        if isinstance(row, Unreadable) or len(row.cells) == width:
            yield row
        elif len(row.cells) < width:
            yield Record(row.line, row.cells + ("",) * (width - len(row.cells)))
        else:
            problem = f"{len(row.cells)} cells where the first row has {width}"
            yield Unreadable(row.line, row.cells, problem)


def _byte_lines(sample: bytes, stream: IO[bytes], progress: list[int]) -> Iterator[bytes]:
    """The input's lines (with their endings): the sample already read, then the rest."""
    pieces = io.BytesIO(sample).readlines()
    tail = pieces.pop() if pieces and not pieces[-1].endswith(b"\n") else b""
    for line in pieces:
        progress[0] += len(line)
        yield line
    for line in stream:
        if tail:  # the line the sample cut in two
            line, tail = tail + line, b""
        progress[0] += len(line)
        yield line
    if tail:
        progress[0] += len(tail)
        yield tail


def _decoded_lines(lines: Iterator[bytes], encoding: str) -> Iterator[tuple[str, str]]:
    """(text, problem) per line: a line that is not in the encoding is read with
    replacement characters and its problem said."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding.replace("windows-", "cp")
    first = encoding == "utf-8-sig"
    for line in lines:
        if first:
            line, first = line.removeprefix(codecs.BOM_UTF8), False
        try:
            yield line.decode(codec), ""
        except UnicodeDecodeError as exc:
            yield line.decode(codec, "replace"), f"not valid {encoding} ({exc.reason})"


def _utf16_lines(
    sample: bytes, stream: IO[bytes], progress: list[int]
) -> Iterator[tuple[str, str]]:
    """UTF-16 (rare: Excel's 'Unicode text') is decoded whole; it has no line bytes."""
    data = sample + stream.read()
    progress[0] = len(data)
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"starts like UTF-16 but is not ({exc.reason})") from None
    return ((line, "") for line in io.StringIO(text, newline=""))


def _sample_lines(sample: bytes, encoding: str) -> Iterator[tuple[str, str]]:
    if encoding == "utf-16":
        text = sample.decode("utf-16", "ignore")
        return ((line, "") for line in io.StringIO(text, newline=""))
    return _decoded_lines(iter(io.BytesIO(sample).readlines()), encoding)


def _line_rows(lines: Iterator[tuple[str, str]]) -> Iterator[Record | Unreadable]:
    for number, (text, problem) in enumerate(lines, 1):
        value = text.rstrip("\r\n")
        if problem:
            yield Unreadable(number, (value,), problem)
        elif value.strip():
            yield Record(number, (value,))


def _csv_rows(lines: Iterator[tuple[str, str]], delimiter: str) -> Iterator[Record | Unreadable]:
    """csv.reader over the lines, with the physical line where each row starts and the
    decoding problems of the lines it spans."""
    problems: dict[int, str] = {}

    def texts() -> Iterator[str]:
        for number, (text, problem) in enumerate(lines, 1):
            if problem:
                problems[number] = problem
            yield text

    reader = csv.reader(texts(), delimiter=delimiter)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Unreadable(start, (), f"not CSV: {exc} (lines {start}-{reader.line_num})")
            start = reader.line_num + 1
            continue
        found = [problems.pop(n) for n in range(start, reader.line_num + 1) if n in problems]
        if found:
            yield Unreadable(start, tuple(cells), found[0])
        elif cells and any(c.strip() for c in cells):
            yield Record(start, tuple(cells))
        start = reader.line_num + 1


def _xlsx(sample: bytes, stream: IO[bytes], column: str | int | None, rules: CleanRules) -> Table:
    """The first sheet, streamed (openpyxl's read-only mode); a row's line is its row."""
    from openpyxl import load_workbook

    data = io.BytesIO(sample + stream.read())
    try:
        book = load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError... for a bad file
        raise UnreadableInput(f"not a readable XLSX file ({exc})") from None
    sheet = book.worksheets[0]
    progress = [0]

    def rows() -> Iterator[Record | Unreadable]:
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                progress[0] = number
                cells = tuple(_xlsx_text(v) for v in values)
                while cells and not cells[-1]:
                    cells = cells[:-1]
                if cells:
                    yield Record(number, cells)
        finally:
            book.close()

    return _table("xlsx", "", None, rows(), column, rules, sheet.max_row, progress)


def _xlsx_text(value: Any) -> str:
    """A cell as the spreadsheet shows it: 12 not 12.0, dates in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
