"""Every error leaves the API as ``{"error": {"code", "message", "detail"}}`` with a 4xx/5xx status.

The status of a refusal is decided here, not in ``core/`` (which knows nothing of HTTP):
``HTTP_STATUS`` maps a family's code to the status of every error under it, and names the single
codes that answer otherwise; ``http_status(err)`` reads it (nearest entry up the class tree).

    family (code)                  status   single codes that answer otherwise
    api.auth.NotAuthenticated      401      (a request not signed, or not verifiably: signature_required,
      (not_authenticated)                   request_signature_invalid, request_expired, replayed_request,
                                            digest_mismatch, revoked_caller)
    RequestError (bad_request)     400      bad_signature, missing_signature, unexpected_signer 401;
                                            tx_too_large, request_too_large, batch_too_large,
                                            batch_too_complex 413; method_not_allowed 405;
                                            request_timeout 408; unsupported_media_type 415
    AuthError (unauthorised)       403      core.access.ReadRefused (read_refused: consent_required,
                                            role_required, node_key_required, not_your_data, not_a_party);
                                            unknown_caller, share_token_invalid 401
    NotFound (not_found)           404
    Conflict (conflict)            409
    DomainError (domain_rule)      422
    Unavailable (unavailable)      503      (integrity_failure 503 too)
    anything else                  400      too_many_requests, too_many_signed_requests, too_many_connections 429

Litestar's own refusals (no such route, a method a route does not take, a parameter that does not
validate, a body over a route's limit) are translated here into blokauto errors with a stable code
and a sentence naming what to change, like every other refusal. The errors of the HTTP layer:

    RequestTooLarge (413)      a body over its route's limit
    MethodNotAllowed (405)     a method a route does not take
    UnknownParameter (400)     a query parameter a route does not take (a typo is not ignored)
    RepeatedParameter (400)    a query parameter given more than once
    TooManyRequests (429)      too many requests of one client in flight
    TooManyConnections (429)   too many connections of one client address
    RequestTimeout (408)       a request head that did not arrive in time
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from ..core.errors import BlokautoError, NotFound, RequestError, Unavailable
from ..node.faults import DataIntegrity
from ..store.damage import DamagedData

log = logging.getLogger("blokauto.api")


class RequestTooLarge(RequestError):
    code = "request_too_large"
    template = ("{route} accepts a request body of at most {limit} bytes, and this one is larger. Send less: "
                "split a batch into several (POST /v1/txs/batch takes up to 16 MiB), keep a transaction under "
                "the chain's max_tx_bytes (GET /v1/params); other routes need no body.")
    optional = ("size",)  # the body's declared length, when it declared one


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    template = "{path} does not accept {method}; it accepts {allowed}. GET /schema lists the API."


class UnknownParameter(RequestError):
    code = "unknown_parameter"
    template = ("{route} takes no query parameter {name!r} (it takes: {allowed}); check its spelling, or leave "
                "it out.")


class RepeatedParameter(RequestError):
    code = "repeated_parameter"
    template = "The query parameter {name!r} is given {count} times; give it once."


class TooManyRequests(BlokautoError):
    code = "too_many_requests"
    retryable = True
    template = ("This client already has {limit} requests in flight on this node; wait for some to finish "
                "(fewer parallel requests, or batches: POST /v1/txs/batch).")


class TooManyConnections(BlokautoError):
    code = "too_many_connections"
    retryable = True
    template = ("This client address already has {limit} connections open to this node; reuse connections "
                "(HTTP keep-alive) and close the ones it does not need.")


class RequestTimeout(RequestError):
    code = "request_timeout"
    template = ("The request line and headers did not arrive within {seconds} s, so the connection was closed; "
                "send the whole request head at once.")


class BodyTimeout(RequestError):
    code = "request_body_timeout"
    template = ("The request body did not arrive within {seconds} s (the request head announced it; a body "
                "must come at {rate} KiB/s at least), so the connection was closed; send the whole request at once.")


class NoRoute(NotFound):
    """No route matches the path (the code stays ``not_found``)."""

    template = "There is nothing at {path}; GET /schema lists the API."


class UnknownAsset(NotFound):
    code = "unknown_asset"
    template = "The console has no file {name!r}; open /console and let the page load what it needs."


class BadTxId(RequestError):
    code = "bad_tx_id"
    template = "{value!r} is not a transaction id (64 lowercase hex digits)."


class BatchTooLarge(RequestError):
    code = "batch_too_large"
    template = "A batch holds at most {limit} transactions, not {size}; split it."


class BatchBodyTooComplex(RequestError):
    code = "batch_too_complex"
    template = ("The batch body has {commas} commas; a batch of at most {limit} transactions has at most {max_commas}. "
                "Send an array of signed transactions, split into smaller batches.")


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"
    template = "Transactions are sent as application/json, not {got!r}; set the Content-Type header."


class UnknownQuery(NotFound):
    code = "unknown_query"
    template = "This node knows no query {name!r}; GET /v1/queries lists them (or run `blokauto query --list`)."


class HeightNotReached(NotFound):
    code = "height_not_reached"
    template = ("Block {height} is not committed yet (this node is at height {head}); ask again once it is "
                "(GET /v1/txs/ID?wait=S answers with the height of a transaction).")


#: The HTTP status of each family (by its code) and of each code answering otherwise. Codes, not
#: classes, so that a refusal defined anywhere (api/app.py too) is mapped here without an import cycle.
HTTP_STATUS: dict[str, int] = {
    # families: every error under one answers with its status
    "error": 400,
    "bad_request": 400,
    "unauthorised": 403,
    "not_found": 404,
    "conflict": 409,
    "domain_rule": 422,
    "unavailable": 503,
    "not_authenticated": 401,  # api.auth: who signed the request is not established
    # single codes
    "unknown_caller": 401,
    "share_token_invalid": 401,
    "bad_signature": 401,
    "missing_signature": 401,
    "unexpected_signer": 401,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "request_body_timeout": 408,
    "tx_too_large": 413,
    "request_too_large": 413,
    "batch_too_large": 413,
    "batch_too_complex": 413,
    "unsupported_media_type": 415,
    "too_many_requests": 429,
    "too_many_signed_requests": 429,
    "too_many_connections": 429,
    "integrity_failure": 503,
}


def http_status(err: BlokautoError | type[BlokautoError]) -> int:
    """The status ``err`` (an error or its class) answers with: its code's, else its nearest family's."""
    cls = err if isinstance(err, type) else type(err)
    for klass in cls.__mro__:
        status = HTTP_STATUS.get(getattr(klass, "code", ""))
        if status is not None:
            return status
    raise TypeError(f"{cls.__name__} is not a blokauto error")  # pragma: no cover (BlokautoError is mapped)




def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def error_bytes(err: BlokautoError) -> bytes:
    """An error body as bytes, for answers written below Litestar (connection limits, timeouts)."""
    return msgspec.json.encode(error_body(err.code, err.message, err.detail))


def blokauto_error(_: Request, exc: BlokautoError) -> Response:
    headers = {"Retry-After": str(getattr(exc, "retry_after", 1))} if exc.retryable else None
    return Response(error_body(exc.code, exc.message, exc.detail), status_code=http_status(exc), headers=headers)


def _validation_reason(request: Request, exc: ValidationException) -> str:
    """Litestar's validation errors as one sentence: which parameter, where, the value sent and why."""
    parts = []
    for e in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(e, dict) or not e.get("key"):
            continue
        source = getattr(e.get("source"), "value", e.get("source")) or "request"
        key = str(e["key"])
        values = {"query": request.query_params, "path": request.path_params, "header": request.headers}.get(str(source))
        sent = values.get(key) if values is not None else None
        shown = key if sent is None else f"{key}={str(sent)[:40]}"
        why = str(e.get("message", "not valid"))
        parts.append(f"{source} parameter {shown}: {why[:1].lower() + why[1:]}")
    return "; ".join(parts) or str(exc.detail)


def as_blokauto_error(request: Request, exc: HTTPException) -> BlokautoError:
    """Litestar's own refusal as a blokauto error with a stable code and an actionable sentence."""
    status = exc.status_code
    if isinstance(exc, ValidationException):
        reason = _validation_reason(request, exc)
        reason = reason[:1000] + ("." if not reason.endswith(".") else "")
        if isinstance(exc.extra, list) and exc.extra:
            return RequestError(reason=reason, errors=exc.extra)
        return RequestError(reason=reason)
    if status == 413:
        handler = request.scope.get("route_handler")
        limit = handler.resolve_request_max_body_size() if handler is not None else None
        route = f"{request.method} {request.url.path}"
        length = request.headers.get("content-length", "")
        if length.isdigit():
            return RequestTooLarge(route=route, limit=limit, size=int(length))
        return RequestTooLarge(route=route, limit=limit)
    if status == 405:
        allowed = (exc.headers or {}).get("allow", "")
        return MethodNotAllowed(method=request.method, path=request.url.path, allowed=allowed or "no method")
    if status == 404:
        return NoRoute(path=request.url.path[:200])
    if status >= 500:
        return Unavailable(reason=str(exc.detail))
    return RequestError(reason=f"{exc.detail}.")


def http_error(request: Request, exc: HTTPException) -> Response:
    err = as_blokauto_error(request, exc)
    status = exc.status_code if 400 <= exc.status_code < 600 else 500
    # e.g. Allow on 405 (RFC 9110 requires it), Retry-After on 429/503
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "retry-after")}
    if err.retryable:
        headers.setdefault("Retry-After", "1")
    return Response(error_body(err.code, err.message, err.detail), status_code=status, headers=headers or None)


def read_damage(exc: DamagedData | sqlite3.DatabaseError, what: str, where: str,
                scope: Any = "state") -> DamagedData | None:
    """The damage a failed read stands for: ``exc`` itself, or SQLite unable to read a file
    (``database disk image is malformed``) as damage to ``what``; None for a SQLite error that
    is not damage (a bug, or a lock)."""
    if isinstance(exc, DamagedData):
        return exc
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
        return None
    return DamagedData(what, where, f"SQLite cannot read it ({exc})", scope=scope)


def refuse_damage(node: Any, damage: DamagedData) -> DataIntegrity:
    """Never serve damaged data: the node turns unhealthy, and the read is refused with this."""
    node.health.note(damage)
    return DataIntegrity.of(damage)


def damaged_data(request: Request, exc: DamagedData) -> Response:
    """A read met data that does not match what the node committed: never serve it; the node turns unhealthy."""
    return blokauto_error(request, refuse_damage(request.app.state.node, exc))


def database_error(request: Request, exc: sqlite3.DatabaseError) -> Response:
    """SQLite cannot read a database file (``database disk image is malformed``): damage, not a bug."""
    damage = read_damage(exc, "the node's databases", request.url.path)
    if damage is None:
        return internal_error(request, exc)
    return damaged_data(request, damage)


def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(error_body("internal_error", "The node failed to answer; this is a bug, please report it."),
                    status_code=500)


EXCEPTION_HANDLERS = {BlokautoError: blokauto_error, HTTPException: http_error, DamagedData: damaged_data,
                      sqlite3.DatabaseError: database_error, Exception: internal_error}
