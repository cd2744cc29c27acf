"""The unassigned inbox: mail to the return path that is no bounce. List and read
(scope `read`), assign to an address or delete (scope `admin`)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from bounced.http.auth import Scope, acting
from bounced.http.ingest import IngestedOut, ingested_json
from bounced.http.models import Address, RowId
from bounced.http.models import Request as Body
from bounced.http.suppressions import Reading
from bounced.listener.inbox import Inbox
from bounced.metrics import count_ingested
from bounced.suppressions import Suppressions, plain

__all__ = ["router"]

router = APIRouter(tags=["inbox"])
Admin = Annotated[Suppressions, Depends(acting(Scope.ADMIN))]


class InboxItem(BaseModel):
    id: int
    received_at: str | None
    mail_from: str
    rcpt_tos: str
    subject: str
    reason: str
    assigned_to: str


class InboxMessage(InboxItem):
    client: str
    assigned_at: str | None
    raw_base64: str


class InboxQuery(Body):
    assigned: bool = False


@router.get("/v1/inbox", response_model=list[InboxItem])
def inbox(sup: Reading, query: Annotated[InboxQuery, Query()]) -> list[dict[str, Any]]:
    """Messages waiting (all of them with `assigned=true`), oldest first."""
    return [plain(row) for row in Inbox(sup).list(assigned=query.assigned)]


@router.get("/v1/inbox/{message_id}", response_model=InboxMessage)
def message(message_id: RowId, sup: Reading) -> dict[str, Any]:
    """One message with its bytes (base64)."""
    row = plain(Inbox(sup).get(message_id))
    raw = row.pop("raw")
    return row | {"raw_base64": base64.b64encode(raw).decode()}


class Assign(Body):
    address: Address = Field(min_length=1)


@router.post("/v1/inbox/{message_id}/assign", response_model=IngestedOut)
def assign(message_id: RowId, body: Assign, sup: Admin) -> dict[str, Any]:
    """Record the message as a failed delivery to `address`, through the policy."""
    result = Inbox(sup).assign(message_id, body.address)
    count_ingested([result])
    return ingested_json(result)


class Deleted(BaseModel):
    deleted: list[int]


@router.delete("/v1/inbox/{message_id}", response_model=Deleted)
def delete(message_id: RowId, sup: Admin) -> dict[str, list[int]]:
    """Erase one message (404 when it is not there)."""
    Inbox(sup).get(message_id)
    return {"deleted": Inbox(sup).delete([message_id])}
