"""The shapes of the API's answers and requests (pydantic), shared by the routers.

Every request model refuses unknown fields (`extra="forbid"`: a typo is a 422, not a
silently ignored option).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bounced.suppressions import Verdict

__all__ = [
    "Address",
    "AddressPath",
    "LastBounce",
    "Request",
    "RowId",
    "VerdictOut",
    "verdict_json",
]

_EMAIL = {"format": "email"}
#: An address in a body, as people write it (bounced normalises it; an invalid one is
#: answered with its reason).
Address = Annotated[str, Field(json_schema_extra=_EMAIL)]
#: An address in a path.
AddressPath = Annotated[str, Path(json_schema_extra=_EMAIL)]

#: A row id in a path or a body: what a 64-bit database key can hold.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Request(BaseModel):
    """Base of every request body and query: unknown fields are refused, and so is text
    holding NUL (no database stores it; a streamed export would fail after its start)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Request:
        for name, value in self:
            texts = value if isinstance(value, list) else [value]
            if any(isinstance(t, str) and "\x00" in t for t in texts):
                raise ValueError(f"{name}: NUL characters are not allowed")
        return self


class LastBounce(BaseModel):
    reason: str
    status: str
    bounce_class: str
    at: datetime | None


class VerdictOut(BaseModel):
    """May this address be mailed? An address the store never saw is sendable."""

    address: str
    normalized: str | None
    sendable: bool
    verdict: str
    state: str | None
    reason: str
    blocked_at: datetime | None
    returns: int
    last_bounce: LastBounce | None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A verdict as the JSON of VerdictOut (built by hand: the bulk check makes 100 000)."""
    check, row = verdict
    last = None
    if row is not None and row.last_return_at is not None:
        last = {
            "reason": row.last_reason,
            "status": row.last_status,
            "bounce_class": row.last_class,
            "at": _time(row.last_return_at),
        }
    return {
        "address": check.address,
        "normalized": check.normalized,
        "sendable": check.sendable,
        "verdict": check.verdict,
        "state": check.state or None,
        "reason": check.reason,
        "blocked_at": _time(row.blocked_at) if row is not None else None,
        "returns": row.returns if row is not None else 0,
        "last_bounce": last,
    }
