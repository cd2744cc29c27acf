"""`POST /v1/clean` over HTTP, on SQLite and PostgreSQL: the same cleaning as the
command, streamed back as CSV or NDJSON, behind the `read` scope."""

from __future__ import annotations

import csv
import io
import json

import pytest
from helpers.dns_server import DnsServer
from helpers.http import Api
from openpyxl import Workbook

ZONE = {"mx.example": {"MX": ["10 mx.mx.example."]}, "nullmx.example": {"MX": ["0 ."]}}


@pytest.fixture
def api(database_url):
    with DnsServer(ZONE) as dns:
        api = Api.start(database_url, **{"dns.nameservers": [dns.address], "dns.timeout": "1s"})
        yield api
        api.close()


def test_a_csv_is_cleaned_and_streamed_back(api):
    api.sup.block(["blocked@mx.example"])
    body = "name;email\nAnn;ann@mx.example\nBo;blocked@mx.example\nZo;z@nullmx.example\n"
    answer = api.client.post(
        "/v1/clean",
        content=body.encode("cp1252"),
        headers=api.auth("read") | {"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["name", "email", "normalized", "status", "reason", "detail"]
    assert [r[3:5] for r in rows[1:]] == [["ok", ""], ["reject", "blocked"], ["reject", "null_mx"]]


def test_ndjson_an_xlsx_upload_and_switches(api):
    book = Workbook()
    book.active.append(["email"])
    for i in range(2500):  # more than one chunk of the answer
        book.active.append([f"user{i}@mx.example"])
    book.active.append(["info@mx.example"])
    upload = io.BytesIO()
    book.save(upload)
    answer = api.client.post(
        "/v1/clean?roles=reject&suppression=false",
        content=upload.getvalue(),
        headers=api.auth("read") | {"Accept": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert len(rows) == 2501
    assert {r["status"] for r in rows[:2500]} == {"ok"}
    assert (rows[-1]["email"], rows[-1]["status"], rows[-1]["reason"]) == (
        "info@mx.example",
        "reject",
        "role_account",
    )


def test_the_read_scope_is_needed(api):
    body = b"a@mx.example\n"
    assert api.client.post("/v1/clean", content=body).status_code == 401
    assert api.client.post("/v1/clean", content=body, headers=api.auth("check")).status_code == 403
    assert api.client.post("/v1/clean", content=body, headers=api.auth("admin")).status_code == 200


def test_an_unreadable_upload_is_one_json_error(api):
    answer = api.client.post("/v1/clean", content=b"PK\x03\x04 broken", headers=api.auth("read"))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unreadable_input"
    answer = api.client.post(
        "/v1/clean?column=phone", content=b"email\na@mx.example\n", headers=api.auth("read")
    )
    assert answer.status_code == 422


def test_unknown_switches_are_refused(api):
    answer = api.client.post(
        "/v1/clean?dsn=false", content=b"a@mx.example\n", headers=api.auth("read")
    )
    assert answer.status_code == 422
    assert "dsn" in answer.json()["error"]["message"]


def test_an_empty_upload_is_an_empty_list(api):
    answer = api.client.post("/v1/clean", content=b"", headers=api.auth("read"))
    assert (answer.status_code, answer.text) == (200, "address,normalized,status,reason,detail\r\n")
