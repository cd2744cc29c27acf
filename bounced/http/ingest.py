"""Bounces in (`POST /v1/bounces`, a raw message) and sent messages registered
(`POST /v1/sent`, with each one's signed VERP return path): scope `ingest`."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from bounced import verp
from bounced.http.auth import Scope, acting
from bounced.http.errors import ApiError
from bounced.http.models import Address
from bounced.http.models import Request as Body
from bounced.metrics import count_ingested
from bounced.sending.log import SENT_COLUMNS, SendingLog, SentStatus
from bounced.suppressions import Ingested, Suppressions, plain

__all__ = ["IngestedOut", "ingested_json", "router"]

router = APIRouter(tags=["ingest"])
Ingesting = Annotated[Suppressions, Depends(acting(Scope.INGEST))]
RAW_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


class RowOut(BaseModel):
    recipient: str
    address: str | None
    duplicate: bool
    effects: list[str]
    problem: str
    kind: str
    reason: str
    bounce_class: str
    status: str
    diagnostic: str


class IngestedOut(BaseModel):
    """What the parser found in the message and what the policy did with each row."""

    source: str
    outcome: str
    kind: str | None
    detector: str
    rows: list[RowOut]
    new_blocks: list[str]
    problems: list[str]


def ingested_json(result: Ingested) -> dict[str, Any]:
    bounces = {b.recipient: b.to_dict() for b in result.report.bounces}
    rows = []
    for row in result.rows:
        facts = bounces.get(row.recipient, {})
        rows.append(
            {
                "recipient": row.recipient,
                "address": row.address,
                "duplicate": row.duplicate,
                "effects": sorted(row.effects),
                "problem": row.problem,
                **{k: facts.get(k, "") for k in ("kind", "reason", "bounce_class", "status")},
                "diagnostic": facts.get("diagnostic", ""),
            }
        )
    kind = result.report.kind
    return {
        "source": result.source,
        "outcome": result.outcome.value,
        "kind": None if kind is None else str(kind),
        "detector": result.report.detector,
        "rows": rows,
        "new_blocks": result.new_blocks,
        "problems": result.problems,
    }


@router.post(
    "/v1/bounces",
    response_model=IngestedOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in RAW_TYPES},
        }
    },
)
async def ingest_bounce(request: Request, sup: Ingesting) -> dict[str, Any]:
    """Parse one returned message (the raw bytes, `message/rfc822`) and record its rows;
    a message that is no bounce is answered `not_bounce` and nothing is recorded."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(422, "invalid_request", "the body must be the raw message")
    result = sup.ingest(raw, source=f"api:{sup.actor}")
    count_ingested([result])
    return ingested_json(result)


class SentIn(Body):
    recipient: Address = Field(min_length=1)
    message_id: str = Field(min_length=1)
    subject: str = ""
    status: SentStatus = SentStatus.SENT
    error: str = ""
    raw_base64: str | None = None


class SentBatch(Body):
    messages: list[SentIn] = Field(min_length=1, max_length=1000)


class SentOut(BaseModel):
    id: int
    address: str
    message_id: str
    subject: str
    status: str
    reason: str
    error: str
    sent_at: str | None
    updated_at: str | None
    return_path: str | None


class SentAnswer(BaseModel):
    """Each message as logged, with the return path to put on its envelope (null when
    `[verp]` has no secret or domain)."""

    messages: list[SentOut]


def _raw(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_request", "raw_base64: not base64") from None


@router.post("/v1/sent", response_model=SentAnswer)
def register_sent(body: SentIn | SentBatch, sup: Ingesting) -> dict[str, Any]:
    """Log sent messages (one, or a batch as `{"messages": [...]}`); a message refused
    during the send (`error`) is read as a bounce at once."""
    log = SendingLog(sup)
    cfg = sup.settings.verp
    signing = bool(cfg.secret and cfg.domain)
    out = []
    for message in body.messages if isinstance(body, SentBatch) else [body]:
        row = log.record(
            message.recipient,
            message.message_id,
            subject=message.subject,
            raw=_raw(message.raw_base64),
            status=message.status,
            error=message.error,
        )
        path = None
        if signing:
            path = verp.encode(
                row["address"],
                row["message_id"],
                secret=cfg.secret,
                prefix=cfg.prefix,
                domain=cfg.domain,
            )
        out.append({**{c: plain(row)[c] for c in SENT_COLUMNS}, "return_path": path})
    return {"messages": out}
