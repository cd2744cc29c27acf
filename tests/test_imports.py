"""Providers' suppression lists in and out: every import format reads its shapes, bad rows
are reported by line and the rest imported, importing twice changes nothing, and each
import format round-trips with its export."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from helpers.dsn import make_dsn

from bounced import Suppressions
from bounced.cli.providers import EXPORT_CHOICES, ExportTarget, ImportFormat
from bounced.dsn import BounceClass, Kind, Reason
from bounced.errors import UnreadableImport
from bounced.formats import Format
from bounced.providers import exports
from bounced.providers.exports import EXPORT_FORMATS, write_export
from bounced.providers.imports import IMPORT_FORMATS, entries, record
from bounced.suppressions import plain


def read(fmt: str, text: str, **kw):
    return list(entries(fmt, io.StringIO(text), **kw))


def facts(found):
    return [
        (e.bounce.recipient, e.bounce.kind, e.bounce.bounce_class, e.bounce.reason)
        if e.bounce
        else (e.where, e.problem)
        for e in found
    ]


HARD = (Kind.FAILED, BounceClass.HARD, Reason.USER_UNKNOWN)


def test_cli_choices_are_the_formats() -> None:
    assert tuple(f.value for f in ImportFormat) == IMPORT_FORMATS
    assert EXPORT_CHOICES == EXPORT_FORMATS
    assert tuple(ExportTarget) == (*Format, *EXPORT_FORMATS)


def test_ses_csv_ndjson_and_api_answer() -> None:
    csv_text = "a@example.com,BOUNCE\nb@example.com,COMPLAINT\n\nc@example.com,NONSENSE\n,BOUNCE\n"
    assert facts(read("ses", csv_text)) == [
        ("a@example.com", *HARD),
        ("b@example.com", Kind.COMPLAINT, None, None),
        ("line 4", "unknown reason 'NONSENSE'"),
        ("line 5", "no address"),
    ]
    ndjson = '{"emailAddress":"a@example.com","reason":"BOUNCE"}\nnot json\n'
    assert facts(read("ses", ndjson)) == [("a@example.com", *HARD), ("line 2", "no address")]
    answer = {
        "SuppressedDestinationSummaries": [
            {"EmailAddress": "a@example.com", "Reason": "COMPLAINT", "LastUpdateTime": "2020-01-01"}
        ],
        "NextToken": "x",
    }
    assert facts(read("ses", json.dumps(answer, indent=2))) == [
        ("a@example.com", Kind.COMPLAINT, None, None)
    ]


def test_mailgun_lists_by_their_columns() -> None:
    bounces = (
        "address,code,error,created_at\n"
        'a@example.com,550,"550 5.1.1 No such user",Fri, 21 Oct 2011 11:02:55 UTC\n'
        'b@example.com,552,"552 5.2.2 Mailbox full",Fri, 21 Oct 2011 11:02:55 UTC\n'
    )
    found = read("mailgun", bounces)
    assert facts(found)[0] == ("a@example.com", *HARD)
    assert facts(found)[1] == ("b@example.com", Kind.FAILED, BounceClass.SOFT, Reason.MAILBOX_FULL)
    assert found[1].bounce.diagnostic == "552 5.2.2 Mailbox full"
    complaints = "address,created_at\nc@example.com,Fri, 21 Oct 2011 11:02:55 UTC\n"
    assert facts(read("mailgun", complaints)) == [("c@example.com", Kind.COMPLAINT, None, None)]
    unsubscribes = "address,tags,created_at\nd@example.com,*,Fri, 21 Oct 2011\n"
    (row,) = read("mailgun", unsubscribes)
    assert (row.bounce.kind, row.bounce.feedback_type) == (Kind.COMPLAINT, "unsubscribe")


def test_sendgrid_bounce_block_spam_and_invalid() -> None:
    text = (
        "email,created,reason,status\n"
        "a@example.com,1443651125,550 5.1.1 The email account does not exist,5.1.1\n"
        "b@example.com,1443651125,550 5.7.1 Client host blocked using zen.spamhaus.org,5.7.1\n"
    )
    got = facts(read("sendgrid", text))
    assert got[0] == ("a@example.com", *HARD)
    assert got[1][:3] == ("b@example.com", Kind.FAILED, BounceClass.SOFT)  # a block: sender-side
    assert got[1][3] in {Reason.BLOCKED, Reason.BAD_REPUTATION}
    spam = "email,created,ip\nc@example.com,1443651125,10.0.0.1\n"
    assert facts(read("sendgrid", spam)) == [("c@example.com", Kind.COMPLAINT, None, None)]
    invalid = "email,created,reason\nnot-an-address,1443651125,Mail domain is unknown\n"
    assert facts(read("sendgrid", invalid))[0][1:3] == (Kind.FAILED, BounceClass.SOFT)


def test_postmark_dump_and_csv() -> None:
    dump = {
        "Suppressions": [
            {
                "EmailAddress": "a@example.com",
                "SuppressionReason": "HardBounce",
                "Origin": "Recipient",
                "CreatedAt": "2019-12-10T08:58:33-05:00",
            },
            {
                "EmailAddress": "b@example.com",
                "SuppressionReason": "SpamComplaint",
                "Origin": "Recipient",
                "CreatedAt": "2019-12-10T08:58:33-05:00",
            },
            {
                "EmailAddress": "c@example.com",
                "SuppressionReason": "ManualSuppression",
                "Origin": "Customer",
                "CreatedAt": "2019-12-10T08:58:33-05:00",
            },
        ]
    }
    got = read("postmark", json.dumps(dump))
    assert facts(got)[0] == ("a@example.com", *HARD)
    assert [e.bounce.feedback_type for e in got[1:]] == ["abuse", "suppressed"]
    text = "EmailAddress,SuppressionReason,Origin,CreatedAt\na@example.com,HardBounce,Recipient,x\n"
    assert facts(read("postmark", text)) == [("a@example.com", *HARD)]


def test_generic_csv_reasons_and_columns() -> None:
    text = (
        "Email,Why,When\n"
        "a@example.com,user_unknown,2024-01-01\n"
        "b@example.com,complaint,2024-01-01\n"
        "c@example.com,550 5.1.1 user unknown,2024-01-01\n"
        "d@example.com,mailbox_full,2024-01-01\n"
    )
    columns = {"address": "Email", "reason": "Why", "date": "When"}
    got = facts(read("csv", text, columns=columns))
    assert got[0] == ("a@example.com", *HARD)
    assert got[1] == ("b@example.com", Kind.COMPLAINT, None, None)
    assert got[2] == ("c@example.com", *HARD)
    assert got[3] == ("d@example.com", Kind.FAILED, BounceClass.SOFT, Reason.MAILBOX_FULL)
    with pytest.raises(UnreadableImport, match="column"):
        read("csv", text)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(UnreadableImport):
        read("nonesuch", "")


def test_ses_export_splits_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "SES_LIMIT", 2)
    rows = [{"address": f"a{i}@example.com", "state": "blocked"} for i in range(5)]
    files = [io.StringIO()]

    def split(part: int) -> io.StringIO:
        assert part == len(files) + 1
        files.append(io.StringIO())
        return files[-1]

    assert write_export("ses", rows, files[0], split=split) == 5
    assert [f.getvalue().count("\n") for f in files] == [2, 2, 1]
    assert files[0].getvalue().splitlines()[0] == "a0@example.com,BOUNCE"  # no header
    with pytest.raises(ValueError):
        write_export("ses", rows, io.StringIO())


# --- with a store -------------------------------------------------------------------------


def blocked(sup: Suppressions) -> dict[str, str]:
    return {r["address"]: r["blocked_reason"] for r in sup.list() if r["state"] != "active"}


def seed(sup: Suppressions) -> None:
    sup.ingest(make_dsn("hard@example.com"), source="test")
    (done,) = sup.ingest_bounces(
        [("test", "fbl-1", [read("ses", "spam@example.com,COMPLAINT\n")[0].bounce])]
    )
    assert done.new_blocks == ["spam@example.com"]
    sup.check("active@example.com")


@pytest.mark.parametrize("fmt", [*EXPORT_FORMATS, "csv"])
def test_each_import_format_round_trips_with_its_export(
    database_url: str, tmp_path, fmt: str
) -> None:
    with Suppressions.open(database_url) as sup:
        seed(sup)
        out = io.StringIO()
        if fmt == "csv":
            sup.export(out)
        else:
            write_export(fmt, map(plain, sup.list()), out)
        source = blocked(sup)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    columns = {"reason": "blocked_reason"} if fmt == "csv" else None
    with Suppressions.open(other) as sup:
        done = record(sup, entries(fmt, io.StringIO(out.getvalue()), columns=columns), fmt)
        again = record(sup, entries(fmt, io.StringIO(out.getvalue()), columns=columns), fmt)
        assert (done.imported, done.skipped) == (2, [])
        assert (again.imported, again.known) == (0, 2)  # importing twice changes nothing
        imported = blocked(sup)
    assert set(imported) == set(source) == {"hard@example.com", "spam@example.com"}
    if fmt in ("ses", "postmark", "csv"):  # the formats that tell a complaint
        assert imported == source


def test_dry_run_records_nothing(database_url: str) -> None:
    with Suppressions.open(database_url) as sup:
        done = record(
            sup, read("ses", "a@example.com,BOUNCE\nnot an address,BOUNCE\n"), "ses", dry_run=True
        )
        assert (done.imported, len(done.skipped)) == (1, 1)
        assert list(sup.list()) == []


def test_cli_import_reports_bad_rows_by_line_and_imports_the_rest(database_url, tmp_path):
    path = tmp_path / "suppressed.csv"
    path.write_text("a@example.com,BOUNCE\nnot an address,BOUNCE\nb@example.com,COMPLAINT\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCED_")}

    def run(*args):
        cmd = [sys.executable, "-m", "bounced", "--database-url", database_url, *args]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)

    first = run("import", "ses", str(path))
    assert first.returncode == 1, first.stderr
    assert f"{path}, line 2: " in first.stderr
    assert "imported 2, already known 0, skipped 1 (of 3 rows)" in first.stderr
    second = run("import", "ses", str(path))
    assert "imported 0, already known 2, skipped 1" in second.stderr
    exported = run("export", "--format", "ses")
    assert exported.returncode == 0, exported.stderr
    assert sorted(csv.reader(io.StringIO(exported.stdout))) == [
        ["a@example.com", "BOUNCE"],
        ["b@example.com", "COMPLAINT"],
    ]
    missing = run("import", "csv", str(tmp_path / "nonesuch.csv"))
    assert missing.returncode == 2
