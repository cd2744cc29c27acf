"""Retry plans: list and show (scope `read`), due ones claimed for resending (scope
`ingest`: each retry is handed out once, as by `bounced retries due --claim`), cancel
(scope `admin`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from bounced.http.auth import Scope, acting
from bounced.http.models import Request as Body
from bounced.http.models import RowId
from bounced.http.suppressions import Reading
from bounced.sending.log import SendingLog
from bounced.suppressions import Suppressions, plain

__all__ = ["router"]

router = APIRouter(tags=["retries"])
Claiming = Annotated[Suppressions, Depends(acting(Scope.INGEST))]
Admin = Annotated[Suppressions, Depends(acting(Scope.ADMIN))]


class PlanOut(BaseModel):
    id: int
    address: str
    message_id: str
    status: str
    reason: str
    attempt: int
    due_at: str | None
    started_at: str | None
    last_attempt_at: str | None
    dispatch_failures: int
    note: str


class PlansQuery(Body):
    status: list[str] = Field(default_factory=list)
    address: str | None = None
    due: bool = False
    limit: int = Field(1000, ge=1, le=10_000)


@router.get("/v1/retries", response_model=list[PlanOut])
def plans(sup: Reading, query: Annotated[PlansQuery, Query()]) -> list[dict[str, Any]]:
    """Retry plans, oldest first; `due=true`: scheduled, due now and not claimed."""
    log = SendingLog(sup)
    if query.due:
        log.sync()
    rows = log.plans(status=query.status, address=query.address, due=query.due)
    out = []
    for row in rows:
        out.append(plain(row))
        if len(out) == query.limit:
            break
    return out


class PlanDetail(BaseModel):
    plan: dict[str, Any]
    sent: dict[str, Any]
    dispatches: list[dict[str, Any]]


@router.get("/v1/retries/{plan_id}", response_model=PlanDetail)
def plan(plan_id: RowId, sup: Reading) -> dict[str, Any]:
    """One plan, its message and how each of its hand-overs went."""
    found = SendingLog(sup).plan(plan_id)
    return {
        "plan": plain(found["plan"]),
        "sent": plain(found["sent"]),
        "dispatches": [plain(d) for d in found["dispatches"]],
    }


class ClaimRequest(Body):
    worker: str = Field("api", min_length=1, max_length=200)
    limit: int = Field(100, ge=1, le=1000)


class DueOut(BaseModel):
    plan_id: int
    recipient: str
    message_id: str
    subject: str
    attempt: int
    due_at: str
    reason: str


@router.post("/v1/retries/claim", response_model=list[DueOut])
def claim(body: ClaimRequest, sup: Claiming) -> list[dict[str, Any]]:
    """Take the retries due now: each attempt is handed out once, whoever else asks at
    the same time; the caller resends them itself (dispatch = pull)."""
    log = SendingLog(sup)
    log.sync()
    return [due.request() for due in log.pull(f"pull:{body.worker}", body.limit)]


class CancelRequest(Body):
    plan_ids: list[RowId] = Field(min_length=1, max_length=10_000)


class Cancelled(BaseModel):
    cancelled: list[int]
    not_open: list[int]


@router.post("/v1/retries/cancel", response_model=Cancelled)
def cancel(body: CancelRequest, sup: Admin) -> dict[str, list[int]]:
    """Cancel open plans (audited); `not_open` lists the closed and unknown ones."""
    done, rest = SendingLog(sup).cancel(body.plan_ids, sup.actor)
    return {"cancelled": done, "not_open": rest}
