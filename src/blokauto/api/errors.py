"""Every error leaves the API as ``{"error": {"code", "message", "detail"}}`` with a 4xx/5xx status."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from ..core.errors import BlokautoError
from ..node.faults import DataIntegrity
from ..store.damage import DamagedData

log = logging.getLogger("blokauto.api")

_HTTP_CODES = {
    400: ("bad_request", "The request is not valid."),
    404: ("not_found", "There is nothing at this address; GET /schema lists the API."),
    405: ("method_not_allowed", "This address does not accept that method; GET /schema lists the API."),
    413: ("request_too_large", "The request body is too large."),
    429: ("too_many_requests", "Too many requests; retry shortly."),
    503: ("unavailable", "The node cannot take this now; retry shortly."),
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def blokauto_error(_: Request, exc: BlokautoError) -> Response:
    headers = {"Retry-After": "1"} if exc.retryable else None
    return Response(error_body(exc.code, exc.message, exc.detail), status_code=exc.http_status, headers=headers)


def http_error(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code if 400 <= exc.status_code < 600 else 500
    code, message = _HTTP_CODES.get(status, ("http_error", str(exc.detail)))
    detail: dict[str, Any] = {}
    if isinstance(exc, ValidationException):
        message = f"The request parameters are not valid: {exc.detail}"
        detail = {"errors": exc.extra} if exc.extra else {}
    # e.g. Allow on 405 (RFC 9110 requires it), Retry-After on 429/503
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "retry-after")}
    return Response(error_body(code, message, detail), status_code=status, headers=headers or None)


def damaged_data(request: Request, exc: DamagedData) -> Response:
    """A read met data that does not match what the node committed: never serve it; the node turns unhealthy."""
    request.app.state.node.health.note(exc)
    return blokauto_error(request, DataIntegrity.of(exc))


def database_error(request: Request, exc: sqlite3.DatabaseError) -> Response:
    """SQLite cannot read a database file (``database disk image is malformed``): damage, not a bug."""
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
        return internal_error(request, exc)
    damage = DamagedData("the node's databases", request.url.path, f"SQLite cannot read them ({exc})", scope="state")
    return damaged_data(request, damage)


def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(error_body("internal_error", "The node failed to answer; this is a bug, please report it."),
                    status_code=500)


EXCEPTION_HANDLERS = {BlokautoError: blokauto_error, HTTPException: http_error, DamagedData: damaged_data,
                      sqlite3.DatabaseError: database_error, Exception: internal_error}
