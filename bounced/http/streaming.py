"""Rows streamed as CSV, NDJSON or a JSON array, through the CLI's writers
(bounced.formats): the same columns and encoding on the command line and over HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from bounced.db.store import batched
from bounced.formats import Format, write_rows

__all__ = ["EXPORT_TYPES", "export_format", "export_responses", "stream_rows"]

#: Media types an export answers with, and the writer of each.
EXPORT_TYPES = {"text/csv": Format.CSV, "application/x-ndjson": Format.NDJSON}
_CHUNK = 1000


def export_format(request: Request) -> Format | None:
    """The export format the request accepts (text/csv, application/x-ndjson), or None
    for a JSON page."""
    accept = request.headers.get("accept", "")
    for media, fmt in EXPORT_TYPES.items():
        if media in accept:
            return fmt
    return None


def export_responses(model: Any) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers of a listing: a JSON page, or the whole export streamed."""
    return {
        200: {
            "model": model,
            "content": {media: {"schema": {"type": "string"}} for media in EXPORT_TYPES},
        }
    }


def _chunks(fmt: Format, columns: Sequence[str], rows: Iterable[Any]) -> Iterator[bytes]:
    first = True
    for batch in batched(rows, _CHUNK):
        out = io.StringIO()
        write_rows(fmt, columns, batch, out)
        text = out.getvalue()
        if fmt is Format.CSV and not first:
            text = text.partition("\n")[2]  # the header, once
        first = False
        yield text.encode()
    if first:  # no rows: a CSV still has its header
        out = io.StringIO()
        write_rows(fmt, columns, [], out)
        yield out.getvalue().encode()


def stream_rows(fmt: Format, columns: Sequence[str], rows: Iterable[Any]) -> StreamingResponse:
    """Rows as `fmt`, a thousand at a time (memory stays flat for any list)."""
    media = next(m for m, f in EXPORT_TYPES.items() if f is fmt)
    return StreamingResponse(_chunks(fmt, columns, rows), media_type=media)
