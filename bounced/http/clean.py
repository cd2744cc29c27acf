"""`POST /v1/clean`: a list in the body (CSV, TSV, XLSX or one address per line, as
`bounced clean` reads it), the cleaned list streamed back as CSV or NDJSON.

The upload is spooled to a temporary file as it arrives (memory stays small; the
body limit is `[api] max_body_size`), then read and answered row by row, a chunk
of rows at a time: the same code as the command (bounced.clean).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bounced.clean import CleanOptions, Mode, clean
from bounced.clean.kinds import OutputFormat
from bounced.clean.reading import Table, open_table
from bounced.clean.writing import cells_of, open_writer, output_columns
from bounced.errors import UnreadableInput
from bounced.http.auth import Scope, acting
from bounced.http.errors import ApiError
from bounced.http.models import Request as Body
from bounced.suppressions import Suppressions

__all__ = [
    "CleanQuery",
    "Reading",
    "clean_list",
    "router",
]

router = APIRouter(tags=["clean"])
Reading = Annotated[Suppressions, Depends(acting(Scope.READ))]

_MEDIA = {OutputFormat.CSV: "text/csv", OutputFormat.NDJSON: "application/x-ndjson"}
#: Rows per chunk written to the socket.
_CHUNK = 1000
#: Upload bytes kept in memory before the spool goes to disk.
_IN_MEMORY = 1024 * 1024


class CleanQuery(Body):
    """The switches of `bounced clean` (unknown ones are refused)."""

    column: str | None = Field(None, description="Header name or number from 1")
    dns: bool = True
    suppression: bool = True
    typos: bool = True
    duplicates: bool = True
    roles: Mode = Mode.RISKY
    disposable: Mode = Mode.RISKY


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in (
                "text/csv",
                "text/plain",
                "text/tab-separated-values",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every input column, then normalized, status, reason and detail; "
        "CSV unless the request accepts application/x-ndjson.",
        "content": {media: {"schema": {"type": "string"}} for media in _MEDIA.values()},
    }
}


@router.post("/v1/clean", openapi_extra=_BODY, responses=_ANSWERS, response_class=StreamingResponse)
async def clean_list(
    request: Request, sup: Reading, query: Annotated[CleanQuery, Query()]
) -> StreamingResponse:
    """Clean a list: which addresses to mail, and why not the others."""
    upload = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 (closed by _rows)
    async for piece in request.stream():
        upload.write(piece)
    upload.seek(0)
    tsv = "tab-separated" in request.headers.get("content-type", "")
    try:
        table = await run_in_threadpool(
            open_table, upload, name="upload.tsv" if tsv else "", column=query.column
        )
    except UnreadableInput as exc:
        upload.close()
        raise ApiError(422, "unreadable_input", str(exc)) from None
    fmt = (
        OutputFormat.NDJSON
        if _MEDIA[OutputFormat.NDJSON] in request.headers.get("accept", "")
        else OutputFormat.CSV
    )
    options = CleanOptions(
        dns=query.dns,
        typos=query.typos,
        duplicates=query.duplicates,
        roles=query.roles,
        disposable=query.disposable,
    )
    store = sup if query.suppression else None
    return StreamingResponse(_rows(table, upload, fmt, options, store, sup), media_type=_MEDIA[fmt])


def _rows(
    table: Table,
    upload: IO[bytes],
    fmt: OutputFormat,
    options: CleanOptions,
    store: Suppressions | None,
    sup: Suppressions,
) -> Iterator[bytes]:
    """The answer, a chunk of rows at a time (run in the thread pool: DNS waits block)."""
    buffer = io.BytesIO()
    writer = open_writer(fmt, buffer, output_columns(table.columns))
    results = clean(
        table.rows,
        column=table.column,
        options=options,
        suppressions=store,
        settings=sup.settings,
    )
    try:
        for n, result in enumerate(results, 1):
            writer.write(cells_of(result, table.width))
            if n % _CHUNK == 0:
                yield _drain(writer, buffer)
        writer.close()
        yield buffer.getvalue()
    finally:
        upload.close()


def _drain(writer: Any, buffer: io.BytesIO) -> bytes:
    writer.flush()
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data
