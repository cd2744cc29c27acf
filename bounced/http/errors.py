"""Every error the API answers, as `{"error": {"code": ..., "message": ...}}`.

Routes raise `ApiError` (or let a `BouncedError` from the Python API through);
`install(app)` maps those, FastAPI's validation errors, Starlette's HTTP errors and
anything unexpected onto that one shape. An unexpected error is logged with its
traceback and answered with a plain 500: no traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from bounced.errors import (
    BouncedError,
    ConfigError,
    DatabaseUnavailable,
    InvalidAddress,
    UnknownAddress,
    UnknownMessage,
    UnknownPlan,
    UnknownSelection,
    UnknownToken,
)

__all__ = ["ERROR_RESPONSES", "ApiError", "ErrorBody", "ErrorDetail", "error_response", "install"]

log = logging.getLogger("bounced.http")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


#: Declared on every route, so the OpenAPI document says what errors look like.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad request"),
        (401, "No valid token"),
        (403, "The token lacks the scope"),
        (404, "Not found"),
        (413, "Request too large"),
        (422, "Invalid request"),
        (503, "Database unavailable"),
    )
}

#: HTTP status words as error codes, for Starlette's own errors (404, 405 ...).
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}

#: The Python API's errors: status and code.
_BOUNCED = (
    (InvalidAddress, 422, "invalid_address"),
    (UnknownAddress, 404, "unknown_address"),
    (UnknownSelection, 404, "unknown_selection"),
    (UnknownPlan, 404, "unknown_plan"),
    (UnknownMessage, 404, "unknown_message"),
    (UnknownToken, 404, "unknown_token"),
    (DatabaseUnavailable, 503, "database_unavailable"),
    (ConfigError, 503, "not_configured"),
)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _bounced_error(_request: Request, exc: Exception) -> JSONResponse:
    for kind, status, code in _BOUNCED:
        if isinstance(exc, kind):
            if status == 503:
                log.error("%s", exc)
            return error_response(status, code, str(exc))
    return error_response(400, "bad_request", str(exc))


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot store (PostgreSQL refuses NUL characters in text):
    the request's fault, said without the statement."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
    why = detail[0] if detail else "a value the database cannot store"
    return error_response(422, "invalid_request", f"the database refused a value: {why}")


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal", "internal error (logged on the server)")


def install(app: FastAPI) -> None:
    """Answer every error of `app` in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BouncedError, _bounced_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
