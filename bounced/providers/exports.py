"""The blocked list written in the shape each provider's suppression import takes
(`bounced export --format ses|mailgun|postmark|sendgrid`), so a sender can push
bounced's verdicts into the provider and stop paying for sends to dead addresses.

- `ses`: CSV `address,BOUNCE|COMPLAINT` without a header, as an SES import job
  takes it, at most SES_LIMIT rows per file (`split` names the next file).
- `mailgun`: the bounces CSV, `address,code,error,created_at`.
- `sendgrid`: the bounces CSV, `email,created,reason,status`.
- `postmark`: a suppression dump, `{"Suppressions": [{"EmailAddress",
  "SuppressionReason", "Origin", "CreatedAt"}]}`.

Each reads back with `bounced import` of the same format (tests/test_imports.py).
Rows are those of `Suppressions.list` (plain: times as ISO text); active addresses
are not written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any, TextIO

__all__ = [
    "EXPORT_FORMATS",
    "SES_LIMIT",
    "Row",
    "Writer",
    "write_export",
]

EXPORT_FORMATS = ("ses", "mailgun", "postmark", "sendgrid")

#: Rows per file of an SES import job.
SES_LIMIT = 100_000

Row = Mapping[str, Any]
Writer = Callable[[Iterable[Row], TextIO], int]


def _complaint(row: Row) -> bool:
    return row.get("blocked_reason") == "complaint"


def _when(row: Row) -> datetime | None:
    text = row.get("blocked_at") or row.get("last_return_at")
    return datetime.fromisoformat(text) if text else None


def _why(row: Row) -> str:
    """The words bounced has for the block: its reason, and the last bounce's."""
    parts = [row.get("blocked_reason") or "", row.get("last_reason") or ""]
    return "bounced: " + " / ".join(p for p in parts if p)


def _ses(rows: Iterable[Row], out: TextIO, split: Callable[[int], TextIO] | None) -> int:
    writer, count = csv.writer(out), 0
    for row in rows:
        if count and count % SES_LIMIT == 0:
            if split is None:
                raise ValueError(f"an SES import takes {SES_LIMIT} rows per file")
            writer = csv.writer(split(count // SES_LIMIT + 1))
        writer.writerow([row["address"], "COMPLAINT" if _complaint(row) else "BOUNCE"])
        count += 1
    return count


def _csv(header: list[str], cells: Callable[[Row], list[Any]]) -> Writer:
    """A writer of a CSV with `header` and one line of `cells(row)` per row."""

    def write(rows: Iterable[Row], out: TextIO) -> int:
        writer, count = csv.writer(out), 0
        writer.writerow(header)
        for row in rows:
            writer.writerow(cells(row))
            count += 1
        return count

    return write


def _mailgun_line(row: Row) -> list[Any]:
    when = _when(row)
    created = format_datetime(when).replace("-0000", "UTC") if when else ""
    return [row["address"], "550", _why(row), created]


def _sendgrid_line(row: Row) -> list[Any]:
    when = _when(row)
    status = row.get("last_status") or "5.0.0"
    return [row["address"], int(when.timestamp()) if when else "", _why(row), status]


def _postmark(rows: Iterable[Row], out: TextIO) -> int:
    out.write('{"Suppressions": [')
    count = 0
    for row in rows:
        reason = "SpamComplaint" if _complaint(row) else "HardBounce"
        if row.get("blocked_reason") in ("manual", "former_employee"):
            reason = "ManualSuppression"
        item = {
            "EmailAddress": row["address"],
            "SuppressionReason": reason,
            "Origin": "Customer",
            "CreatedAt": row.get("blocked_at") or "",
        }
        out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n]}\n" if count else "]}\n")
    return count


def write_export(
    fmt: str, rows: Iterable[Row], out: TextIO, *, split: Callable[[int], TextIO] | None = None
) -> int:
    """Write the rows that are not active to `out` as `fmt`; returns the count. For
    SES, `split(n)` gives the n-th file (2, 3, ...) when the rows do not fit in one;
    without it more rows than SES_LIMIT are a ValueError."""
    blocked = (row for row in rows if row.get("state") != "active")
    if fmt == "ses":
        return _ses(blocked, out, split)
    return _WRITERS[fmt](blocked, out)


_WRITERS: dict[str, Writer] = {
    "mailgun": _csv(["address", "code", "error", "created_at"], _mailgun_line),
    "sendgrid": _csv(["email", "created", "reason", "status"], _sendgrid_line),
    "postmark": _postmark,
}
