"""bounced.formats: every format writes exactly the given columns, and the data formats stream."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from bounced.formats import Format, Row, write_rows

COLUMNS = ("name", "count", "note")
ROWS = [
    {"name": "a", "count": 1, "note": 'comma, "quote"\nand newline', "extra": "ignored"},
    {"name": "ü", "count": None},
]


def written(fmt: Format, rows: list[Row]) -> str:
    out = io.StringIO()
    assert write_rows(fmt, COLUMNS, rows, out) == len(rows)
    return out.getvalue()


def test_ndjson_one_object_per_line_with_exactly_the_columns() -> None:
    lines = written(Format.NDJSON, ROWS).splitlines()
    assert [list(json.loads(line)) for line in lines] == [list(COLUMNS)] * 2
    assert json.loads(lines[1]) == {"name": "ü", "count": None, "note": None}


def test_json_is_one_array_and_empty_input_is_an_empty_array() -> None:
    assert json.loads(written(Format.JSON, ROWS)) == [
        {"name": "a", "count": 1, "note": 'comma, "quote"\nand newline'},
        {"name": "ü", "count": None, "note": None},
    ]
    assert json.loads(written(Format.JSON, [])) == []


def test_csv_has_the_header_and_quotes_what_needs_it() -> None:
    table = list(csv.reader(io.StringIO(written(Format.CSV, ROWS), newline="")))
    assert table == [
        list(COLUMNS),
        ["a", "1", 'comma, "quote"\nand newline'],
        ["ü", "", ""],
    ]


def test_table_shows_values_as_text_and_drops_empty_columns() -> None:
    text = written(Format.TABLE, [{"name": "[bold]x[/bold]", "count": 2}])
    assert "[bold]x[/bold]" in text
    assert "count" in text
    assert "note" not in text


def test_table_columns_narrow_only_the_table() -> None:
    rows = [{"name": "a", "count": 2}]
    for fmt, shown in ((Format.TABLE, False), (Format.NDJSON, True)):
        out = io.StringIO()
        write_rows(fmt, COLUMNS, rows, out, table_columns=("name",))
        assert ("count" in out.getvalue()) is shown


@pytest.mark.parametrize("fmt", [Format.NDJSON, Format.JSON, Format.CSV])
def test_data_formats_write_each_row_before_the_next_is_made(fmt: Format) -> None:
    out = io.StringIO()
    seen: list[int] = []

    def rows() -> Iterator[Row]:
        for n in range(3):
            seen.append(len(out.getvalue()))
            yield {"name": f"row{n}"}

    write_rows(fmt, COLUMNS, rows(), out)
    assert seen[0] < seen[1] < seen[2]
