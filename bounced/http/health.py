"""/healthz, /readyz and /metrics: no token needed (`[api] metrics_token` guards
/metrics when set)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bounced.health import readiness
from bounced.http.errors import ApiError
from bounced.metrics import CONTENT_TYPE_LATEST, exposition

__all__ = ["Health", "router"]

router = APIRouter(tags=["health"])
_BEARER = HTTPBearer(auto_error=False)


class Health(BaseModel):
    status: str
    detail: str = ""


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready"}},
)
def readyz(request: Request) -> Response:
    """The database answers and its schema is current."""
    ready, why = readiness(request.app.state.store)
    body = Health(status="ready" if ready else "unavailable", detail=why)
    return Response(body.model_dump_json(), 200 if ready else 503, media_type="application/json")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Response:
    """Prometheus metrics of every worker process."""
    wanted = request.app.state.settings.api.metrics_token
    if wanted:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            raise ApiError(401, "unauthorized", "/metrics needs [api] metrics_token")
    settings = request.app.state.settings
    body = exposition(request.app.state.store, settings.listener.spool_dir)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
