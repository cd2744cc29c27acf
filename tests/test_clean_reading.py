"""Lists as spreadsheets save them: encodings, delimiters, headers, the address column,
XLSX, and rows that cannot be read (reported with their line, the rest read)."""

from __future__ import annotations

import codecs
import io

import pytest
from openpyxl import Workbook

from bounced.clean import Record, Unreadable
from bounced.clean.reading import SAMPLE, detect_encoding, open_table, sniff_delimiter
from bounced.errors import UnreadableInput

#: What Excel on a German or French Windows writes for "CSV (separated by semicolons)":
#: Windows-1252, `;`, CRLF, a header in the local language.
EXCEL_1252 = (
    "Nom;Prénom;Adresse e-mail\r\nMüller;Jürgen;jürgen@example.de\r\nDœuf;Zoé;zoe@example.fr\r\n"
)


def opened(data: bytes, **kw):
    table = open_table(io.BytesIO(data), **kw)
    return table, list(table.rows)


def test_a_windows_1252_csv_with_semicolons():
    table, rows = opened(EXCEL_1252.encode("cp1252"), name="export.csv")
    assert (table.kind, table.encoding, table.delimiter) == ("csv", "windows-1252", ";")
    assert table.header == ("Nom", "Prénom", "Adresse e-mail")
    assert table.column == 2  # no known header name; the column holding addresses
    assert rows == [
        Record(2, ("Müller", "Jürgen", "jürgen@example.de")),
        Record(3, ("Dœuf", "Zoé", "zoe@example.fr")),
    ]


def test_a_utf8_bom_file_with_commas_and_a_known_header():
    data = codecs.BOM_UTF8 + b"Email,Name\nann@example.org,Ann\n"
    table, rows = opened(data)
    assert (table.encoding, table.delimiter, table.header, table.column) == (
        "utf-8-sig",
        ",",
        ("Email", "Name"),
        0,
    )
    assert rows == [Record(2, ("ann@example.org", "Ann"))]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_tab_separated(codec):
    """Excel's 'Unicode text': UTF-16 with a BOM, tabs."""
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    data = bom + "name\temail\r\nZoé\tzoe@example.fr\r\n".encode(codec)
    table, rows = opened(data)
    assert (table.kind, table.encoding, table.delimiter, table.column) == (
        "tsv",
        "utf-16",
        "\t",
        1,
    )
    assert rows == [Record(2, ("Zoé", "zoe@example.fr"))]


def test_latin1_bytes_that_1252_leaves_undefined():
    assert detect_encoding(b"\x81\xe9 ") == "latin-1"
    assert detect_encoding("é€".encode("cp1252")) == "windows-1252"
    assert detect_encoding("é€".encode()) == "utf-8"


def test_utf8_cut_in_the_middle_of_a_character_at_the_sample_end_is_still_utf8():
    data = b"a" * (SAMPLE - 1) + "é".encode()
    assert detect_encoding(data[:SAMPLE]) == "utf-8"


def test_one_address_per_line_without_a_header():
    table, rows = opened(b"ann@example.org\n\nbob@example.org\n")
    assert (table.kind, table.header, table.columns) == ("lines", None, ("address",))
    assert rows == [Record(1, ("ann@example.org",)), Record(3, ("bob@example.org",))]


def test_a_header_only_file_of_one_column():
    table, rows = opened(b"email\nann@example.org\n")
    assert (table.header, rows) == (("email",), [Record(2, ("ann@example.org",))])


@pytest.mark.parametrize(
    ("lines", "delimiter"),
    [
        (["a,b,c", "1,2,3"], ","),
        (["a;b;c", "1;2,5;3"], ";"),  # a decimal comma inside a value
        (["a\tb", "1\t2"], "\t"),
        (["a|b", "1|2"], "|"),
        (["ann@example.org", "bob@example.org"], None),
    ],
)
def test_the_delimiter_is_sniffed(lines, delimiter):
    assert sniff_delimiter(lines) == delimiter


def test_the_column_by_name_or_number(tmp_path):
    data = b"id,work,home\n1,a@example.org,b@example.org\n"
    assert opened(data)[0].column == 1  # the first column holding addresses
    assert opened(data, column="home")[0].column == 2
    assert opened(data, column="HOME")[0].column == 2
    assert opened(data, column=3)[0].column == 2
    assert opened(data, column="3")[0].column == 2
    with pytest.raises(UnreadableInput, match="no column named"):
        opened(data, column="mobile")
    with pytest.raises(UnreadableInput, match="has 3 column"):
        opened(data, column=7)


def test_quoted_fields_spanning_lines_keep_their_first_line():
    data = b'email,note\n"a@example.org","two\nlines"\nb@example.org,x\n'
    _, rows = opened(data)
    assert rows == [
        Record(2, ("a@example.org", "two\nlines")),
        Record(4, ("b@example.org", "x")),
    ]


def test_bad_rows_are_reported_with_their_line_and_the_rest_is_read():
    good = "".join(f"zoé{i}@example.org,Zoé\n" for i in range(4000)).encode()
    assert len(good) > SAMPLE  # the bad bytes come after the part the encoding is read from
    data = (
        b"email,name\n" + good + b"a@example.org,Ann\n"
        b"b@example.org,B\xe9a\xff\n"  # not UTF-8 (the rest of the file is)
        b"c@example.org,Cy,extra\n"  # more cells than the header
        b"d@example.org\n"  # fewer: padded
        b"e@example.org,Eve\n"
    )
    table, all_rows = opened(data)
    assert table.encoding == "utf-8"
    rows = all_rows[4000:]
    assert rows[0] == Record(4002, ("a@example.org", "Ann"))
    assert isinstance(rows[1], Unreadable)
    assert (rows[1].line, rows[1].problem[:15]) == (4003, "not valid utf-8")
    assert rows[2] == Unreadable(4004, ("c@example.org", "Cy", "extra"), rows[2].problem)
    assert "3 cells" in rows[2].problem
    assert rows[3:] == [
        Record(4005, ("d@example.org", "")),
        Record(4006, ("e@example.org", "Eve")),
    ]


def test_an_unclosed_quote_is_one_unreadable_row_and_the_rest_is_read():
    """The quote swallows lines until csv's field limit; those lines are named."""
    filler = "x@example.org,y\n" * 10000
    data = f'email,n\na@example.org,1\n"b@example.org,2\n{filler}c@example.org,3\n'.encode()
    _, rows = opened(data)
    assert rows[0] == Record(2, ("a@example.org", "1"))
    assert isinstance(rows[1], Unreadable)
    assert rows[1].line == 3
    assert "field limit" in rows[1].problem
    assert "lines 3-" in rows[1].problem
    assert rows[-1] == Record(10004, ("c@example.org", "3"))


def _xlsx(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_written_by_openpyxl():
    data = _xlsx([["Name", "E-Mail", "Score"], ["Zoé", "zoe@example.fr", 12.0], ["A", None, 3]])
    table, rows = opened(data, name="list.xlsx")
    assert (table.kind, table.header, table.column, table.total) == (
        "xlsx",
        ("Name", "E-Mail", "Score"),
        1,
        3,
    )
    assert rows == [Record(2, ("Zoé", "zoe@example.fr", "12")), Record(3, ("A", "", "3"))]


def test_an_xlsx_is_recognised_without_its_name_and_a_broken_one_is_refused():
    table, _ = opened(_xlsx([["zoe@example.fr"]]))
    assert table.kind == "xlsx"
    with pytest.raises(UnreadableInput, match="XLSX"):
        opened(b"PK\x03\x04 not really a zip")


@pytest.mark.parametrize("shift", [0, 1, 7, 15])
def test_a_line_cut_by_the_sample_is_read_whole(shift):
    lines = [f"{'x' * shift}{i}@example.org" for i in range(SAMPLE // 16)]
    _, rows = opened(("email\n" + "\n".join(lines) + "\n").encode())
    assert [r.cells[0] for r in rows] == lines
