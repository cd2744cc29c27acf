"""`bounced clean` as a real process: files as spreadsheets save them, a DNS server on
loopback, the store, the outputs, the summary and the exit codes."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import subprocess
import sys

import pytest
from helpers.dns_server import DnsServer
from openpyxl import Workbook, load_workbook

from bounced.suppressions import Suppressions

ZONE = {
    "mx.example": {"MX": ["10 mx.mx.example."]},
    "nullmx.example": {"MX": ["0 ."]},
}


@pytest.fixture
def dns():
    with DnsServer(ZONE, servfail={"broken.example"}) as server:
        yield server


@pytest.fixture
def bounced(tmp_path, dns):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}
    env["BOUNCED_DNS_NAMESERVERS"] = dns.address
    env["BOUNCED_DNS_TIMEOUT"] = "1s"

    def run(*args, stdin=None):
        cmd = [sys.executable, "-m", "bounced", *args]
        return subprocess.run(
            cmd, input=stdin, capture_output=True, cwd=tmp_path, env=env, timeout=120
        )

    return run


def read_csv(data: bytes, delimiter=","):
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


EXCEL = (
    "Nom;Prénom;Adresse e-mail\r\n"
    "Müller;Jürgen;jurgen@mx.example\r\n"
    "Dœuf;Zoé;zoe@nullmx.example\r\n"
    "X;Y;x@gone.example\r\n"
    "W;V;w@broken.example\r\n"
    "M;J;JURGEN@mx.example\r\n"
)


def test_a_windows_1252_semicolon_file_with_dns(bounced, tmp_path):
    (tmp_path / "list.csv").write_bytes(EXCEL.encode("cp1252"))
    result = bounced("clean", "list.csv", "-o", "clean.csv", "--no-suppression")
    assert result.returncode == 0, result.stderr
    out = (tmp_path / "clean.csv").read_bytes()
    assert out.startswith(codecs.BOM_UTF8)  # for the spreadsheet program it came from
    rows = read_csv(out, ";")
    assert rows[0] == [
        "Nom", "Prénom", "Adresse e-mail", "normalized", "status", "reason", "detail"
    ]  # fmt: skip
    assert [r[:3] for r in rows[1:]] == [line.split(";") for line in EXCEL.splitlines()[1:]]
    assert [(r[4], r[5]) for r in rows[1:]] == [
        ("ok", ""),
        ("reject", "null_mx"),
        ("reject", "no_such_domain"),
        ("unknown", "dns_timeout"),
        ("reject", "duplicate"),
    ]
    assert rows[5][6] == "duplicate of line 2"
    summary = result.stderr.decode()
    assert "windows-1252" in summary
    assert "gone.example" in summary and "no_such_domain" in summary  # domains that failed


def test_rejects_go_to_their_own_file_in_their_own_format(bounced, tmp_path):
    (tmp_path / "list.txt").write_text("ok@mx.example\nbad@@x\nnull@nullmx.example\n")
    result = bounced(
        "clean", "list.txt", "-o", "clean.ndjson", "--rejects", "rejects.xlsx",
        "--no-suppression",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line) for line in (tmp_path / "clean.ndjson").read_text().splitlines()]
    assert kept == [
        {
            "address": "ok@mx.example",
            "normalized": "ok@mx.example",
            "status": "ok",
            "reason": "",
            "detail": "",
        }
    ]
    sheet = load_workbook(tmp_path / "rejects.xlsx", read_only=True).worksheets[0]
    rejected = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rejected[0] == ["address", "normalized", "status", "reason", "detail"]
    assert [(r[0], r[3]) for r in rejected[1:]] == [
        ("bad@@x", "invalid_address"),
        ("null@nullmx.example", "null_mx"),
    ]


def test_an_xlsx_in_and_stdin_out(bounced, tmp_path):
    book = Workbook()
    book.active.append(["email", "score"])
    book.active.append(["info@mx.example", 3])
    book.save(tmp_path / "list.xlsx")
    result = bounced("clean", "list.xlsx", "--no-suppression")
    assert result.returncode == 0, result.stderr
    assert read_csv(result.stdout) == [
        ["email", "score", "normalized", "status", "reason", "detail"],
        ["info@mx.example", "3", "info@mx.example", "risky", "role_account", "role account"],
    ]


def test_stdin_in(bounced):
    result = bounced("clean", "-", "--no-dns", "--no-suppression", stdin=b"a@gmial.com\n")
    assert result.returncode == 0, result.stderr
    assert read_csv(result.stdout)[1][2:4] == ["risky", "likely_typo"]


def test_unreadable_rows_are_named_kept_and_exit_1(bounced, tmp_path):
    (tmp_path / "list.csv").write_bytes(b"email,n\na@mx.example,1\nb@mx.example,2,3\nc@x.org,4\n")
    result = bounced("clean", "list.csv", "--no-dns", "--no-suppression")
    assert result.returncode == 1
    assert "list.csv: line 3: 3 cells where the first row has 2" in result.stderr.decode()
    rows = read_csv(result.stdout)
    assert [r[0] for r in rows[1:]] == ["a@mx.example", "b@mx.example", "c@x.org"]
    assert rows[2][4:] == ["unreadable_row", "3 cells where the first row has 2 | extra cells: 3"]


@pytest.mark.parametrize(
    "args",
    [
        ("clean", "missing.csv"),
        ("clean", "list.csv", "--column", "phone"),
        ("clean", "list.csv", "--roles", "sometimes"),
        ("clean", "list.csv", "--no-such-option"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(bounced, tmp_path, args):
    (tmp_path / "list.csv").write_text("email\na@mx.example\n")
    result = bounced(*args, "--no-suppression")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


def test_the_store_is_checked(bounced, tmp_path, database_url):
    with Suppressions.open(database_url, actor="test") as sup:
        sup.block(["blocked@mx.example"])
    (tmp_path / "list.txt").write_text("blocked@mx.example\nfine@mx.example\n")
    result = bounced("--database-url", database_url, "clean", "list.txt")
    assert result.returncode == 0, result.stderr
    assert [r[2:4] for r in read_csv(result.stdout)[1:]] == [["reject", "blocked"], ["ok", ""]]
