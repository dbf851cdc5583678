"""The OpenAPI document describes the API as it is, so generated clients work.

Litestar derives most of it from the handlers; what it cannot see is added per route with
``documented(...)``, an ``operation_class`` that completes the operation Litestar built:

- the error responses a route can give, each with the one error body every error has
  (``{"error": {"code", "message", "detail"}}``);
- the request body of routes that read raw bytes (a signed transaction, a batch of them);
- the parameters of module queries, from the query's own msgspec Struct (a structured parameter,
  such as a recall scope, is JSON: ``content: application/json``);
- patterns of path parameters the handler checks itself (a transaction id);
- response media types and headers Litestar does not know (server-sent events, HTTP-dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

#: What each status an error can answer with means (api/errors.py's HTTP_STATUS decides which error answers which).
ERROR_STATUSES = {
    400: ("The request is not valid (a stable code says why): among others a query parameter the route does not "
          "take (unknown_parameter) or given twice (repeated_parameter), or a path or query that is not UTF-8 "
          "once percent-decoded (bad_request)."),
    401: ("Not signed, or the signature does not hold (signature_required, request_signature_invalid, "
          "request_expired, replayed_request, digest_mismatch), or by a key the consortium does not know "
          "(unknown_caller) or no longer active (revoked_caller); a transaction signature that does not verify "
          "(bad_signature); a share link that does not open the report (share_token_invalid)."),
    403: ("The signer may not do or read this: the code names what is missing (consent_required, role_required, "
          "node_key_required, not_your_data, not_a_party; for transactions role_not_allowed and others)."),
    404: "Not found, or a block not committed yet (height_not_reached).",
    405: "The route does not take this method (method_not_allowed); the Allow header lists those it takes.",
    408: "The request line and headers did not arrive within 10 s (request_timeout); the connection is closed.",
    409: "Conflicts with the ledger (a replayed transaction).",
    413: "The body or batch is over its limit (request_too_large names the route and its limit in bytes).",
    415: "Not sent as application/json.",
    422: "A ledger rule refused it.",
    429: ("This client has too many requests in flight (too_many_requests) or its address too many connections "
          "open (too_many_connections); Retry-After says when to retry."),
    500: "The node failed to answer; a bug to report.",
    503: ("The node cannot take this now (unavailable, with Retry-After: busy, its connection or snapshot limit "
          "reached), or its copy of the data is damaged (integrity_failure)."),
}
#: What every route can answer: a query parameter it does not take, a head too slow, too many requests or
#: connections, a bug, or unavailable/damaged data.
ALWAYS = (400, 408, 429, 500, 503)

_TYPES = {"object": OpenAPIType.OBJECT, "array": OpenAPIType.ARRAY, "string": OpenAPIType.STRING,
          "integer": OpenAPIType.INTEGER, "number": OpenAPIType.NUMBER, "boolean": OpenAPIType.BOOLEAN,
          "null": OpenAPIType.NULL}
_KEYWORDS = {"minimum": "minimum", "maximum": "maximum", "pattern": "pattern", "minLength": "min_length",
             "maxLength": "max_length", "minItems": "min_items", "maxItems": "max_items", "enum": "enum",
             "description": "description", "title": "title", "format": "format", "const": "const",
             "default": "default"}


def schema_of(json_schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Schema:
    """A Litestar ``Schema`` from a JSON Schema (``$ref`` resolved inline from ``$defs``)."""
    defs = defs if defs is not None else json_schema.get("$defs", {})
    if "$ref" in json_schema:
        return schema_of(defs[json_schema["$ref"].rsplit("/", 1)[-1]], defs)
    kw: dict[str, Any] = {}
    t = json_schema.get("type")
    if isinstance(t, list):
        kw["type"] = [_TYPES[x] for x in t]
    elif t is not None:
        kw["type"] = _TYPES[t]
    for key, attr in _KEYWORDS.items():
        if key in json_schema:
            kw[attr] = json_schema[key]
    if "properties" in json_schema:
        kw["properties"] = {k: schema_of(v, defs) for k, v in json_schema["properties"].items()}
        kw["required"] = json_schema.get("required") or None
    if json_schema.get("additionalProperties") is False:
        kw["additional_properties"] = False
    if "items" in json_schema:
        kw["items"] = schema_of(json_schema["items"], defs)
    if "anyOf" in json_schema:
        kw["any_of"] = [schema_of(x, defs) for x in json_schema["anyOf"]]
    return Schema(**kw)


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    detail: dict[str, Any]


class ErrorBody(msgspec.Struct):
    """Every error the API answers."""

    error: ErrorDetail


ERROR_SCHEMA = schema_of(msgspec.json.schema(ErrorBody))

_DID = {"type": "string", "pattern": "^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$"}
_SIG = {"type": "object", "required": ["sig", "signer"], "additionalProperties": False,
        "properties": {"sig": {"type": "string", "pattern": "^[0-9a-f]{128}$"}, "signer": _DID}}


def signed_tx_schema(tx_type: Any, chain: str) -> dict[str, Any]:
    """A signed transaction of this chain, with every message type's fields (from the Structs the
    core decodes into). What a signature proves, and whether the expiry is still ahead, cannot be in
    a schema: such a transaction is refused 401, or 400 ``tx_expired``."""
    schema = msgspec.json.schema(tx_type)
    for d in schema.get("$defs", {}).values():
        props = d.get("properties", {})
        if "chain" in props and "sender" in props:  # the body
            props["chain"] = {"type": "string", "const": chain}
            props["sender"] = _DID
        if set(props) == {"sig", "signer"}:
            props["sig"] = {"type": "string", "pattern": "^[0-9a-f]{128}$"}
            props["signer"] = _DID
    schema["description"] = "A signed transaction (canonical JSON); GET /v1/messages lists each message type."
    return schema


#: A batch is any JSON array: each item gets its own id or its own refusal (the batch is not refused for them).
BATCH_ITEMS = {"description": "A signed transaction; an item that is not one is refused on its own in the answer."}
TX_ID_PATTERN = "^[0-9a-f]{64}$"
HTTP_DATE = "An HTTP-date (RFC 9110), e.g. Sun, 06 Dec 2026 20:00:00 GMT."


def json_body(json_schema: dict[str, Any], description: str) -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema_of(json_schema))},
                       required=True, description=description)


def query_parameters(struct: type | None) -> list[Parameter]:
    """The query string parameters of a module query, from its parameter Struct."""
    if struct is None:
        return []
    whole = msgspec.json.schema(struct)
    defs = whole.get("$defs", {})
    root = defs[whole["$ref"].rsplit("/", 1)[-1]] if "$ref" in whole else whole
    required = set(root.get("required", []))
    out = []
    for name, prop in root["properties"].items():
        resolved = defs[prop["$ref"].rsplit("/", 1)[-1]] if "$ref" in prop else prop
        structured = resolved.get("type") in ("object", "array") or "anyOf" in resolved
        if structured:
            out.append(Parameter(name=name, param_in="query", required=name in required,
                                 description=f"{name} as JSON",
                                 content={"application/json": OpenAPIMediaType(schema=schema_of(prop, defs))}))
        else:
            out.append(Parameter(name=name, param_in="query", required=name in required,
                                 schema=schema_of(prop, defs)))
    return out


@dataclass
class _Extras:
    errors: tuple[int, ...] = ()
    request_body: RequestBody | None = None
    parameters: list[Parameter] = field(default_factory=list)
    path_patterns: dict[str, str] = field(default_factory=dict)
    success_media: str | None = None
    success_headers: dict[str, OpenAPIHeader] = field(default_factory=dict)
    replace_parameters: bool = False
    also_ok: dict[int, str] = field(default_factory=dict)
    error_media: str = "application/json"


def documented(*, errors: tuple[int, ...] = (), request_body: RequestBody | None = None,
               parameters: list[Parameter] | None = None, path_patterns: dict[str, str] | None = None,
               success_media: str | None = None, success_headers: dict[str, OpenAPIHeader] | None = None,
               replace_parameters: bool = False, also_ok: dict[int, str] | None = None,
               error_media: str = "application/json") -> type[Operation]:
    """An ``operation_class`` that completes Litestar's operation with what the handler does itself."""
    extras = _Extras(tuple(sorted(set(errors) | set(ALWAYS))), request_body, parameters or [], path_patterns or {},
                     success_media, success_headers or {}, replace_parameters, also_ok or {}, error_media)

    @dataclass
    class DocumentedOperation(Operation):
        def __post_init__(self) -> None:
            responses = dict(self.responses or {})
            for status in extras.errors:
                schema = ERROR_SCHEMA if extras.error_media == "application/json" else Schema(type=OpenAPIType.STRING)
                responses[str(status)] = OpenAPIResponse(
                    description=ERROR_STATUSES[status], content={extras.error_media: OpenAPIMediaType(schema=schema)})
            ok = next((code for code in responses if code.startswith("2")), None)
            if ok is not None and (extras.success_media or extras.success_headers):
                r = responses[ok]
                assert isinstance(r, OpenAPIResponse)
                content = r.content
                if extras.success_media == "text/event-stream":  # each event's data is a JSON object
                    content = {extras.success_media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))}
                elif extras.success_media is not None:
                    content = {extras.success_media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
                responses[ok] = OpenAPIResponse(description=r.description, content=content,
                                                headers={**(r.headers or {}), **extras.success_headers} or None)
            for status, description in extras.also_ok.items():
                responses[str(status)] = OpenAPIResponse(
                    description=description,
                    content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))})
            self.responses = responses
            if extras.request_body is not None:
                self.request_body = extras.request_body
            params = [] if extras.replace_parameters else list(self.parameters or [])
            for p in params:
                if isinstance(p, Parameter) and p.name in extras.path_patterns and p.schema is not None:
                    p.schema = Schema(type=OpenAPIType.STRING, pattern=extras.path_patterns[p.name])
            self.parameters = (params + extras.parameters) or None

    return DocumentedOperation
