"""The HTTP API: a thin adapter over the node, with routes generated from module declarations.

    POST /v1/txs                 submit one signed transaction -> 202 {"id"} (?wait=S: its receipt)
    POST /v1/txs/batch           submit a JSON array of transactions -> per-item id or error
    GET  /v1/txs/{id}            receipt with tx and receipt inclusion proofs and the checkpoint
    GET  /v1/blocks/{height|latest}, /v1/checkpoints/{height|latest}
    GET  /v1/state/{key}         value (or absence) with its state proof and checkpoint
    GET  /v1/consensus/changes   node-key and quorum changes after ?after=H, each proven (verify.follow_consensus)
    GET  /v1/q/{module}/{query}  module queries (one route per declared query)
    GET  /v1/events              server-sent events, resumable with Last-Event-ID or ?from_height
    POST /v1/telemetry/batches, GET|DELETE /v1/telemetry/...   samples beside their batch (telemetry_routes)
    GET  /v1/status, /v1/genesis, /v1/messages, /v1/params, /v1/queries
    GET  /schema                 OpenAPI

Before any route, ``_checked_request`` refuses a path or query that is not UTF-8 once
percent-decoded, a query parameter the route does not take, and one given twice. What one
request may hold is bounded: event streams and snapshot downloads are produced only as fast as
their clients take them (see ``_event_stream`` and ``Snapshots``); connections are bounded below
HTTP (``connections``), requests in flight per client by ``limits.ClientLimits``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, AsyncIterator, Callable
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Parameter, Schema
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path
from litestar.params import FromPath, FromQuery, PathParameter
from litestar.params import QueryParameter
from litestar.background_tasks import BackgroundTask
from litestar.response import File, Stream
from litestar.response.sse import ServerSentEventMessage

from ..core.access import (ANONYMOUS, IDENTIFIED, NODES, PUBLIC, SIGNED, Caller, HolderOf, NodeKeyRequired,
                           NotYourData, ReadPolicy, Roles, UnknownCaller, VehicleData, check_read)
from ..core.encoding import to_builtins
from ..modules.governance import keys as gov_keys
from ..modules.insurance import keys as insurance_keys
from ..modules.insurance import doors as insurance_doors
from ..modules.energy import doors as energy_doors
from ..modules.energy import keys as energy_keys
from ..modules.parts import doors as parts_doors
from ..modules.parts import keys as parts_keys
from ..modules.recalls import keys as recall_keys
from ..modules.recalls import doors as recall_doors
from ..modules.software import keys as software_keys
from ..modules.vehicles import keys as vehicle_keys
from ..core.errors import BlokautoError, MalformedTx, RequestError, TxTooLarge, Unavailable
from ..core.errors import render as render_failure
from ..node.event_feed import EventFeed, FeedEnds, HeightWaiter
from ..node.node import Node
from ..node.reader import AFTER_BLOCK, ChainReader, QueryParamsInvalid, event_id, parse_event_id
from ..store.damage import DamagedData
from ..report.html import render_error_page, render_html, web_asset
from ..report.pdf import render_pdf
from .errors import (EXCEPTION_HANDLERS, BadTxId, BatchBodyTooComplex, BatchTooLarge, HeightNotReached,
                     RepeatedParameter, UnknownParameter, UnknownQuery, UnsupportedMediaType, as_blokauto_error,
                     error_body, http_status, read_damage, refuse_damage)
from ..share_tokens import ShareGrant, ShareRefused, read_token
from .auth import Authenticator, RevokedCaller, SignatureRequired, WrongAuthority
from ..telemetry_intake import BatchWithoutSamples, is_batch_without_samples
from .telemetry_routes import ROUTES as TELEMETRY_ROUTES
from .console_routes import ROUTES as CONSOLE_ROUTES
from .metrics import ROUTES as METRICS_ROUTES, instrument
from .openapi import BATCH_ITEMS, HTTP_DATE, TX_ID_PATTERN, documented, json_body, query_parameters, signed_tx_schema

log = logging.getLogger("blokauto.api")

MAX_BATCH = 5_000
MAX_BATCH_BYTES = 16 * 2**20  # a batch's body; checked as it arrives, before anything is decoded
MAX_BATCH_COMMAS = MAX_BATCH * 100  # bounds the items a batch body can make the decoder allocate
MAX_TX_BODY = 1_048_576  # the largest max_tx_bytes a chain may set; the chain's own limit is checked after
MAX_OTHER_BODY = 65_536
MAX_WAIT_S = 60.0
MAX_FLUSH_WAIT_S = 10.0
READ_THREADS = 32  # threads answering reads; waits for a height or a receipt hold none
CALLERS_CACHED = 10_000  # signers remembered (per block height) between requests


SNAPSHOT_CHUNK = 65_536  # a snapshot download is read and sent this much at a time
MAX_SNAPSHOTS = 2  # snapshot downloads served at once
SNAPSHOT_RETRY_S = 10


class Snapshots:
    """Copies of the block log being downloaded: at most ``limit`` at once (each is a full copy on
    disk), made one at a time by a thread of their own (so the SQLite page cache a copy fills is one,
    not one per read thread), and removed once sent or abandoned."""

    def __init__(self, limit: int = MAX_SNAPSHOTS) -> None:
        self.limit = limit
        self.serving = 0
        self._copier = ThreadPoolExecutor(1, thread_name_prefix="api-snapshot")

    async def copy(self, node: Node) -> str:
        if self.serving >= self.limit:
            err = Unavailable(reason=f"it is sending {self.serving} snapshots, the most it sends at once")
            err.retry_after = SNAPSHOT_RETRY_S  # type: ignore[attr-defined]
            raise err
        self.serving += 1
        try:
            fd, name = tempfile.mkstemp(prefix="blokauto-snapshot-", suffix=".db")
            os.close(fd)
            try:
                await asyncio.get_running_loop().run_in_executor(self._copier, node.copy_chain_to, Path(name))
            except BaseException:
                os.remove(name)
                raise
            return name
        except BaseException:
            self.serving -= 1
            raise

    async def done(self, name: str) -> None:
        self.serving -= 1
        os.remove(name)


def _json_body(request: Request) -> None:
    """Refuse a submission that is not declared JSON (form data, XML, text or nothing)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(got=media or "no content type")


SCHEMA_ASSETS = "/schema-assets"


def _swagger_ui() -> SwaggerRenderPlugin:
    """The interactive API page at /schema, with its JavaScript served by the node itself (it works
    offline and loads nothing from public CDNs)."""
    return SwaggerRenderPlugin(path=["/", "/swagger"], js_url=f"{SCHEMA_ASSETS}/swagger-ui-bundle.js",
                               css_url=f"{SCHEMA_ASSETS}/swagger-ui.css",
                               standalone_preset_js_url=f"{SCHEMA_ASSETS}/swagger-ui-standalone-preset.js",
                               favicon=f"<link rel='icon' type='image/png' href='{SCHEMA_ASSETS}/favicon-32x32.png'>")


def _html_error(_: Request, err: BlokautoError) -> Response:
    """A refusal on a page a person reads is a page too (same status and code as the API's)."""
    return Response(render_error_page(err), status_code=http_status(err), media_type=MediaType.HTML)


def _html_http_error(request: Request, exc: HTTPException) -> Response:
    err = as_blokauto_error(request, exc)
    return Response(render_error_page(err), status_code=exc.status_code, media_type=MediaType.HTML)


def _utf8(raw: bytes, where: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(reason=f"the {where} is not UTF-8 once percent-decoded ({raw[:80].decode('ascii', 'replace')}); "
                                  f"percent-encode the UTF-8 bytes of the text.") from None


#: Integer query parameters of the API's own routes (module queries check theirs themselves).
INTEGER_QUERY = frozenset({b"from_height", b"after", b"min_height", b"before", b"limit"})
_INTEGER = re.compile(rb"-?(0|[1-9][0-9]{0,18})")
ANY_PARAMETER: frozenset[str] = frozenset({"*"})  # a route that refuses for another reason whatever it is given
_FROM_SIGNATURE = frozenset({"(from the signature)"})  # the handler's own parameters, read at its first request


def _query_names(request: Request) -> frozenset[str] | None:
    """The query parameters the matched route takes (None: a route this module does not declare)."""
    handler = request.route_handler
    names = handler.opt.get("query")
    if names is _FROM_SIGNATURE:
        skip = set(request.path_params) | {"request", "state", "scope", "headers", "cookies", "data", "body", "api",
                                           "caller"}
        names = handler.opt["query"] = frozenset(n for n in handler.parsed_fn_signature.parameters if n not in skip)
    return names  # None: the OpenAPI pages and static files


async def _checked_request(request: Request) -> None:
    """Before any route: who signed it (``_authenticate``: an unsigned or unknown caller learns
    nothing more than 401); then the path and query are UTF-8, and every query parameter is one the
    route takes, given once (a misspelt ``?wiat=30`` is refused, not ignored); a height is written
    in ASCII digits (the parser would also take ``%201``, ``3e1`` or other scripts' digits)."""
    await _authenticate(request)
    path = _utf8(request.scope.get("raw_path", b""), "path")
    for name, value in request.path_params.items():
        if isinstance(value, int) and path.rstrip("/").rsplit("/", 1)[-1] != str(value):
            raise RequestError(reason=f"the {name} in the path is not a number in ASCII digits "
                                      f"({path.rsplit('/', 1)[-1][:40]!r}); write it like 42")
    query: bytes = request.scope.get("query_string", b"")
    own_route = not request.route_handler.opt.get("module_query")
    for part in query.split(b"&") if own_route else ():
        name_raw, _, raw = part.partition(b"=")
        if name_raw in INTEGER_QUERY and not _INTEGER.fullmatch(unquote_to_bytes(raw.replace(b"+", b" "))):
            raise RequestError(reason=f"{name_raw.decode()} is a whole number in ASCII digits, not "
                                      f"{raw[:40].decode('ascii', 'replace')!r}")
    names = _query_names(request)
    if names is ANY_PARAMETER:
        names = None
    seen: dict[str, int] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        name = _utf8(part.partition(b"=")[0].replace(b"+", b" "), "query string")
        _utf8(part.partition(b"=")[2].replace(b"+", b" "), "query string")
        seen[name] = seen.get(name, 0) + 1
        if names is not None and name not in names:
            handler = request.route_handler
            route = f"{request.method} {re.sub(r':[a-z]+}', '}', min(handler.paths))}"
            allowed = ", ".join(sorted(names)) or "none"
            if handler.opt.get("module_query"):  # a module query's parameters are refused as invalid_query
                raise QueryParamsInvalid(reason=f"{route} takes no parameter {name[:100]!r} (it takes: {allowed})")
            raise UnknownParameter(name=name[:100], route=route, allowed=allowed)
    for name, count in seen.items():
        if count > 1:
            raise RepeatedParameter(name=name[:100], count=count)


#: A report route: a share link (``?share=TOKEN``) opens it without a signature.
SHAREABLE = VehicleData("vin", "history")


def _route(request: Request) -> str:
    return f"{request.method} {re.sub(r':[a-z]+}', '}', min(request.route_handler.paths))}"


def _signed_url(request: Request) -> str:
    """The URL as the client addressed it (what ``@authority``, ``@path`` and ``@query`` cover)."""
    host = next((v for k, v in request.scope["headers"] if k == b"host"), b"").decode("latin-1")
    if not host:
        raise RequestError(reason="a signed request needs a Host header (its @authority is signed)")
    query = request.scope.get("query_string", b"")
    return (f"{request.scope.get('scheme', 'http')}://{host}{request.scope.get('raw_path', b'/').decode('latin-1')}"
            + (f"?{query.decode('latin-1')}" if query else ""))


async def _authenticate(request: Request) -> None:
    """Who signed the request, as ``request.state.caller`` (``ANONYMOUS`` on public routes, which
    read no signature). A route that is not public refuses an unsigned request, a signature that
    does not hold (``api.auth``) and a member key no longer active; what the caller may read is
    the route's own check (its read policy)."""
    request.state.caller = ANONYMOUS
    policy = request.route_handler.opt.get("read", PUBLIC)  # none declared: Litestar's schema pages and assets
    if policy is PUBLIC or (policy is SHAREABLE and "share" in request.query_params):
        return
    api: Api = request.app.state.api
    if not api.auth.signed(request.scope["headers"]):
        raise SignatureRequired(route=_route(request))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        body = await request.body()
    elif _has_body(request):
        raise RequestError(reason=f"a {request.method} request carries no body (its signature would not cover it)")
    else:
        body = b""
    url = _signed_url(request)
    authority = url.split("/", 3)[2].lower()
    if api.authorities is not None and authority not in api.authorities:
        raise WrongAuthority(authority=authority[:200], own=", ".join(sorted(api.authorities)))
    did = api.auth.verify(request.method, url, request.scope["headers"], body)
    caller = await api.caller(did)
    if caller.status:
        status, _, since = caller.status.partition(":")
        raise RevokedCaller(did=did, org=caller.org, status=status, since=since)
    if policy is IDENTIFIED and not caller.known:
        raise UnknownCaller(caller=caller.describe(), what=_route(request))
    request.state.caller = caller


def _has_body(request: Request) -> bool:
    for k, v in request.scope["headers"]:
        if (k == b"content-length" and v.strip() not in (b"", b"0")) or k == b"transfer-encoding":
            return True
    return False


def _caller(request: Request) -> Caller:
    return request.state.caller  # type: ignore[no-any-return]


_N = r"(0|[1-9][0-9]{0,17})"
#: An event id as the stream sends them (no leading zeros; a height below 10^15 < 2^53, positions below 10^18).
EVENT_ID_PATTERN = rf"^(0|[1-9][0-9]{{0,14}})(:{_N}:{_N}(:{_N})?)?$"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEP_ALIVE = b": keep-alive\r\n\r\n"


def _position_id(position: tuple[int, int, int, int]) -> str | None:
    """The event id to resume from ``position`` (None before block 0: resume with the same request)."""
    h, i, j, k = position
    if h < 0:
        return None
    if (i, j, k) == AFTER_BLOCK:
        return str(h)
    return event_id(h, i, j, k)


def _sse(data: str, event: str, eid: str | None) -> bytes:
    return ServerSentEventMessage(data=data, event=event, id=eid).encode()


def _sse_event(eid: str, ev: dict[str, Any]) -> bytes:
    return _sse(msgspec.json.encode(ev).decode(), ev["type"], eid)


def _error_message(err: BlokautoError, resume: tuple[int, int, int, int]) -> bytes:
    """The last message of a stream that cannot go on: the error, as every error body, with the id to resume at."""
    return _sse(msgspec.json.encode(error_body(err.code, err.message, err.detail)).decode(), "error",
                _position_id(resume))


def _more_read_threads() -> None:
    """Reads run in the loop's default executor (``asyncio.to_thread``): give it enough threads that
    a few slow reads do not queue the others (the default is cores + 4)."""
    from concurrent.futures import ThreadPoolExecutor

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(READ_THREADS, thread_name_prefix="api-read"))


def _txid(value: str) -> bytes:
    try:
        txid = bytes.fromhex(value)
    except ValueError:
        raise BadTxId(value=value[:80]) from None
    if len(txid) != 32 or txid.hex() != value:
        raise BadTxId(value=value[:80])
    return txid


def _wait_s(wait: float) -> float:
    return max(0.0, min(float(wait), MAX_WAIT_S))


MAX_HEIGHT = 2**53 - 1  # any height a query names; exact in JSON Schema (a float there) and in JavaScript
PathHeight = Annotated[int, PathParameter(ge=0, le=MAX_HEIGHT, description=(
    "A block height (0 to 2^53-1); beyond the head: 404 height_not_reached."))]
MinHeight = Annotated[int, QueryParameter(ge=-1, le=MAX_HEIGHT, description=(
    "Wait (up to 10 s) until the state reflects this block (read your own writes); -1: do not wait."))]
WaitSeconds = Annotated[float, QueryParameter(ge=0, le=MAX_WAIT_S,
                                                 description="Seconds to wait for the receipt (0-60).")]
ShareParam = Annotated[str | None, QueryParameter(max_length=2048, description=(
    "A share link's token (blokauto report share VIN): opens this vehicle's report without a signature."))]


@dataclass
class Api:
    """What every route of one app shares: the node's door and the waits and copies it serves."""

    node: Node
    heights: HeightWaiter
    events: EventFeed
    snapshots: Snapshots
    auth: Authenticator = None  # type: ignore[assignment]
    #: The ``@authority`` values this node answers signed requests for (None: any; see auth.own_authorities).
    authorities: frozenset[str] | None = None

    def __post_init__(self) -> None:
        self._callers: dict[str, tuple[int, Caller]] = {}
        if self.auth is None:
            self.auth = Authenticator(self.reader.caller)

    async def caller(self, did: str) -> Caller:
        """Who ``did`` is at the newest flushed block (remembered until the next one)."""
        height = self.node.flushed_height
        hit = self._callers.get(did)
        if hit is not None and hit[0] == height:
            return hit[1]
        caller = await asyncio.to_thread(self.auth.caller, did)
        if len(self._callers) >= CALLERS_CACHED:
            self._callers.clear()
        self._callers[did] = (height, caller)
        return caller

    async def check(self, policy: ReadPolicy, caller: Caller, obj: Any, what: str) -> None:
        """Refuse unless ``policy`` lets ``caller`` read ``obj`` (judged at the newest flushed block)."""
        if not caller.reads_all:
            await asyncio.to_thread(self.reader.check_read, policy, caller, obj, what)

    @property
    def reader(self) -> ChainReader:
        assert self.node.reader is not None, "the node serves once it started"
        return self.node.reader

    def committed(self, height: int) -> None:
        """Refuse a height beyond the head (404 ``height_not_reached``)."""
        head = self.node.head_height
        if height > head:
            raise HeightNotReached(height=height, head=head)

    async def reach(self, min_height: int, timeout: float = MAX_FLUSH_WAIT_S) -> None:
        """Wait (holding no thread) until queries read ``min_height``; a block not committed yet is refused."""
        if min_height > self.node.flushed_height:
            self.committed(min_height)
            await self.heights.wait(min_height, timeout)

    async def receipt(self, txid: bytes, wait: float) -> dict[str, Any]:
        if wait > 0:
            fut = self.node.receipt_future(txid)
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut), wait)
            except asyncio.TimeoutError:
                pass
            finally:
                self.node.forget_receipt_future(txid, fut)
        ev = await asyncio.to_thread(self.node.tx, txid)
        receipt = ev["receipt"]
        if not receipt.get("ok", True):  # the sentence its code and detail stand for (the receipt holds those)
            ev["message"] = render_failure(receipt.get("code", ""), receipt.get("detail") or {})
        return ev

    async def report(self, vin: str, min_height: int, caller: Caller, share: str | None) -> dict[str, Any]:
        """The report of ``vin`` for a caller who may read it, or for anyone with a valid share link."""
        await self.reach(min_height)  # judged on the state the report is read from (a sale just made counts)
        if share is not None:
            with_claims = (await asyncio.to_thread(self._check_share, share, vin)).claims
        else:
            await self.check(SHAREABLE, caller, {"vin": vin}, f"the history report of {vin[:40]}")
            with_claims = await asyncio.to_thread(self._holder_reads, caller, vin)
        return await asyncio.to_thread(self.node.report, vin, with_claims=with_claims)

    def _holder_reads(self, caller: Caller, vin: str) -> bool:
        """Whether ``caller`` is the vehicle's holder (or a regulator, police): its report shows the
        vehicle's insurance claims (anyone else sees them only through a share link that says so)."""
        try:
            self.reader.check_read(_HOLDER, caller, {"vin": vin}, "the report's claims")
        except BlokautoError:
            return False
        return True

    def _check_share(self, token: str, vin: str) -> ShareGrant:
        grant = read_token(token, chain=self.node.genesis.chain, vin=vin, now_ms=time.time_ns() // 1_000_000)
        signer = self.reader.caller(grant.holder)
        try:
            self.reader.check_read(_HOLDER, Caller(grant.holder, signer.org if not signer.node else None,
                                                   known=True), {"vin": vin}, "the report")
        except (BlokautoError,) as err:
            raise ShareRefused(reason=f"its signer {grant.holder} does not hold {vin[:40]} now (a sale voids the links "
                                      f"its former holder made)") from err
        return grant

    async def may_submit(self, caller: Caller, raws: list[bytes]) -> None:
        """A known key submits any transaction; another key only transactions it signs itself."""
        if caller.known:
            return
        for raw in raws:
            try:
                sigs = msgspec.json.decode(raw, type=_Signers).sigs
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                continue  # the submission refuses it as malformed
            if not any(s.signer == caller.did for s in sigs):
                raise UnknownCaller(caller=caller.describe(), what="submissions of transactions it does not sign")

    async def may_read_tx(self, caller: Caller, ev: dict[str, Any]) -> None:
        """A transaction and its receipt are read by its signers, their organisations, nodes, regulators, police."""
        if caller.reads_all:
            return
        signers = [s.get("signer") for s in msgspec.json.decode(ev["tx_raw"]).get("sigs", [])]
        if caller.did in signers:
            return
        if caller.org is not None:
            for did in signers:
                if isinstance(did, str) and (await self.caller(did)).org == caller.org:
                    return
        err = NotYourData(what=f"transaction {ev.get('id', '')}", owner="its signers and their organisations",
                          caller=caller.describe())
        if not caller.known:
            raise UnknownCaller(caller=caller.describe(), what=f"transaction {ev.get('id', '')}") from None
        raise err


#: A route's ``api`` parameter: the app's ``Api``, injected by name.
ApiDep = NamedDependency[Api]
#: A route's ``caller`` parameter: who signed the request (``ANONYMOUS`` on public routes).
CallerDep = NamedDependency[Caller]


class _Sig(msgspec.Struct):
    signer: str


class _Signers(msgspec.Struct):
    sigs: list[_Sig] = []


#: A share link opens while its signer holds the vehicle (its key, or a member key of a holding organisation).
_HOLDER = HolderOf("vin")


# ---------------------------------------------------------------- transactions

def submit_tx_route(signed_tx: dict[str, Any]) -> Any:
    """POST /v1/txs, its body documented with the chain's own transaction schema."""
    @post("/v1/txs", status_code=202, summary="Submit a signed transaction", request_max_body_size=MAX_TX_BODY,
          opt={"read": SIGNED},
          operation_class=documented(errors=(400, 401, 403, 404, 409, 413, 415),
                                     request_body=json_body(signed_tx, "One signed transaction."),
                                     also_ok={200: "With ?wait: the receipt, as GET /v1/txs/{tx_id} answers it."}))
    async def submit_tx(request: Request, api: ApiDep, caller: CallerDep, wait: WaitSeconds = 0.0) -> Response:
        """Stateless checks, replay and authorisation run before the answer: a refusal is a 4xx
        with a stable code. ``wait`` (seconds, up to 60) also waits for the receipt."""
        _json_body(request)
        raw = await request.body()
        limit = api.node.params.get("max_tx_bytes", 65_536)
        if len(raw) > limit:
            raise TxTooLarge(size=len(raw), limit=limit)
        await api.may_submit(caller, [raw])
        if is_batch_without_samples(raw):
            raise BatchWithoutSamples()
        txid = await asyncio.wrap_future(api.node.submit_one(raw))
        if wait > 0:
            return Response(await api.receipt(txid, _wait_s(wait)), status_code=200)
        return Response({"id": txid.hex(), "status": "accepted"}, status_code=202)

    return submit_tx


@post("/v1/txs/batch", status_code=200, summary="Submit many signed transactions",
      request_max_body_size=MAX_BATCH_BYTES, opt={"read": SIGNED},
      operation_class=documented(errors=(400, 401, 403, 413, 415), request_body=json_body(
          {"type": "array", "items": BATCH_ITEMS, "maxItems": MAX_BATCH}, f"Up to {MAX_BATCH} signed transactions.")))
async def submit_batch(request: Request, api: ApiDep, caller: CallerDep) -> dict[str, Any]:
    """A JSON array of signed transactions; each gets its id or its own refusal."""
    _json_body(request)
    body = await request.body()
    commas = body.count(b",")
    if commas > MAX_BATCH_COMMAS:
        raise BatchBodyTooComplex(commas=commas, limit=MAX_BATCH, max_commas=MAX_BATCH_COMMAS)
    try:
        items = msgspec.json.decode(body, type=list[msgspec.Raw])
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MalformedTx(reason=f"a batch is a JSON array of transactions ({reason})") from None
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(limit=MAX_BATCH, size=len(items))
    raws = [bytes(i) for i in items]
    await api.may_submit(caller, raws)
    lone = [is_batch_without_samples(r) for r in raws]  # refused one by one, the others go on
    results = iter(await asyncio.wrap_future(api.node.submit([r for r, b in zip(raws, lone) if not b]).future)
                   if not all(lone) else [])
    out = [{"error": BatchWithoutSamples().to_dict()} if b else
           ({"error": r.to_dict()} if isinstance(r := next(results), Exception) else {"id": r.hex()}) for b in lone]
    return {"accepted": sum(1 for r in out if "id" in r), "results": out}


@get("/v1/txs/{tx_id:str}", summary="A transaction's receipt with inclusion proofs", opt={"read": SIGNED},
     operation_class=documented(errors=(400, 401, 403, 404), path_patterns={"tx_id": TX_ID_PATTERN}))
async def get_tx(api: ApiDep, caller: CallerDep, tx_id: FromPath[str], wait: WaitSeconds = 0.0) -> dict[str, Any]:
    """Read by the transaction's signers and their organisations, nodes, regulators and police. A
    failed receipt comes with ``message``: the sentence its code and detail stand for (rendered by the
    node; the proven receipt holds the code and detail)."""
    ev = await api.receipt(_txid(tx_id), _wait_s(wait))
    await api.may_read_tx(caller, ev)
    return ev


# ---------------------------------------------------------------- blocks, checkpoints, state

def _whole_blocks(caller: Caller, full: bool) -> None:
    """A block's transactions and receipts (``full``) are the block log: for the consortium's nodes."""
    if full and not caller.node:
        raise NodeKeyRequired(what="whole blocks (?full=true)", caller=caller.describe())


@get("/v1/blocks/latest", sync_to_thread=True, summary="The newest block", opt={"read": IDENTIFIED},
     operation_class=documented(errors=(400, 401, 403)))
def latest_block(api: ApiDep, caller: CallerDep, full: FromQuery[bool] = False) -> dict[str, Any]:
    """Headers, transaction ids and attestations for any known key; ``full`` (every transaction and
    receipt) for node keys only."""
    _whole_blocks(caller, full)
    return api.reader.block(api.node.head_height, full=full)


@get("/v1/blocks/{height:int}", sync_to_thread=True, summary="A block's header, ids and attestations",
     opt={"read": IDENTIFIED}, operation_class=documented(errors=(400, 401, 403, 404)))
def get_block(api: ApiDep, caller: CallerDep, height: PathHeight, full: FromQuery[bool] = False) -> dict[str, Any]:
    _whole_blocks(caller, full)
    api.committed(height)
    return api.reader.block(height, full=full)


@get("/v1/checkpoints/latest", sync_to_thread=True, summary="The newest checkpoint", opt={"read": PUBLIC},
     operation_class=documented())
def latest_checkpoint(api: ApiDep) -> dict[str, Any]:
    return to_builtins(api.reader.checkpoint(api.node.head_height))


@get("/v1/checkpoints/{height:int}", sync_to_thread=True, summary="A header with its node attestations",
     opt={"read": PUBLIC}, operation_class=documented(errors=(400, 404)))
def get_checkpoint(api: ApiDep, height: PathHeight) -> dict[str, Any]:
    api.committed(height)
    return to_builtins(api.reader.checkpoint(height))


@get("/v1/snapshot/chain", summary="A consistent copy of this node's block log (chain.db)", opt={"read": NODES},
     operation_class=documented(errors=(401, 403), success_media="application/vnd.sqlite3", success_headers={
         "last-modified": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, description=HTTP_DATE)),
         "etag": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))}),
     media_type="application/vnd.sqlite3")
async def snapshot_chain(api: ApiDep, caller: CallerDep) -> File:
    """For a new node joining the chain: every block, receipt and attestation, and the ordering
    stream position; `blokauto node snapshot` checks it against a quorum checkpoint. At most
    two are served at once (503 ``unavailable`` with Retry-After beyond). For node keys only."""
    check_read(NODES, None, caller, None, "the block log (GET /v1/snapshot/chain)")
    name = await api.snapshots.copy(api.node)
    return File(path=name, filename="chain.db", media_type="application/vnd.sqlite3",
                chunk_size=SNAPSHOT_CHUNK, background=BackgroundTask(api.snapshots.done, name))


#: Who reads a raw state key, by what it holds; any other key: nodes, regulators and police (use the
#: module queries, which declare their readers, for the rest).
STATE_READS: list[tuple[str, ReadPolicy, str | Callable[[str], dict[str, Any]] | None]] = [
    (gov_keys.ORG, IDENTIFIED, None), (gov_keys.MEMBER, IDENTIFIED, None), (gov_keys.PROPOSAL, IDENTIFIED, None),
    (gov_keys.ACTIVE_ORGS, IDENTIFIED, None), (gov_keys.CONSENSUS, IDENTIFIED, None),
    (vehicle_keys.WMI, IDENTIFIED, None),
    (vehicle_keys.VEHICLE, VehicleData("vin", "history"), "vin"),
    (parts_keys.BOM, VehicleData("vin", "history"), "vin"),
    # parts, batches and lots: their parties, as the parts queries that answer from them
    (parts_keys.PART, parts_doors.PART_PARTIES, lambda rest: SimpleNamespace(id=rest)),
    (parts_keys.BATCH, parts_doors.BATCH_PARTIES, lambda rest: SimpleNamespace(id=rest)),
    (parts_keys.LOT, parts_doors.LOT_PARTIES, lambda rest: SimpleNamespace(id=rest)),
    (parts_keys.PASSPORT, SIGNED, None),  # a battery passport: anyone who signs, as the parts/passport query
    (recall_keys.CAMPAIGN, IDENTIFIED, None), (recall_keys.OPEN, IDENTIFIED, None),
    (recall_keys.REMEDY, recall_doors.CAMPAIGN_PARTIES, lambda rest: SimpleNamespace(campaign=_key_number(rest))),
    # software: what every vehicle checks an update against (its device key reads it); its inventory is its history
    (software_keys.REPOSITORY, SIGNED, None), (software_keys.RELEASE, SIGNED, None),
    (software_keys.IMAGE, SIGNED, None), (software_keys.BUNDLE, SIGNED, None),
    (software_keys.VEHICLE, VehicleData("vin", "history"), "vin"),
    # energy: zones and interval books are the market's (every signed request); a meter's readings and
    # positions are its owner's, operator's and grid operator's
    (energy_keys.ZONE, SIGNED, None), (energy_keys.TERMS, SIGNED, None), (energy_keys.BOOK, SIGNED, None),
    (energy_keys.METER, energy_doors.METER_PARTIES, "meter"),
    (energy_keys.READING, energy_doors.METER_PARTIES, lambda rest: {"meter": rest.split("/", 1)[0]}),
    (energy_keys.POSITION, energy_doors.METER_PARTIES, lambda rest: {"meter": rest.split("/", 2)[-1]}),
    (energy_keys.ORDER, energy_doors.ORDER_PARTIES, lambda rest: _order_key(rest)),
    # insurance: a policy and its statements are its insurer's and holder's, a claim its parties'
    (insurance_keys.POLICY, insurance_doors.POLICY_PARTIES, lambda rest: {"policy": _key_number(rest)}),
    (insurance_keys.STATEMENT, insurance_doors.POLICY_PARTIES, lambda rest: {"policy": _key_number(rest)}),
    (insurance_keys.CLAIM, insurance_doors.CLAIM_PARTIES, lambda rest: {"claim": _key_number(rest)}),
]


def _order_key(rest: str) -> dict[str, Any]:
    """zone, start and seq of an energy order's state key remainder (``Z1/<start>/<seq>``)."""
    parts = rest.split("/")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 16 for p in parts[1:]):
        return {}
    return {"zone": parts[0], "start": int(parts[1]), "seq": int(parts[2])}


def _key_number(rest: str) -> int:
    """The first number of a state key's remainder (``0000000000000007/...`` -> 7; -1 if none)."""
    head = rest.split("/", 1)[0]
    return int(head) if head.isdigit() and len(head) <= 16 else -1
OTHER_STATE = Roles("regulator", "police")


def state_read(key: str) -> tuple[ReadPolicy, Any, str]:
    """(the policy, the object it judges, what to call it) for reading state key ``key``."""
    what = f"the state key {key[:120]!r}"
    for prefix, policy, field in STATE_READS:
        if key.startswith(prefix):
            rest = key[len(prefix):]
            return policy, (field(rest) if callable(field) else {field: rest} if field else None), what
    return OTHER_STATE, None, what


@get("/v1/state/{key:path}", summary="A state value with its proof", opt={"read": SIGNED},
     operation_class=documented(errors=(400, 401, 403, 404)))
async def get_state(api: ApiDep, caller: CallerDep, key: FromPath[str], min_height: MinHeight = -1) -> dict[str, Any]:
    """``min_height`` waits (up to 10 s) until the state reflects that block, for read-your-writes.
    A key is UTF-8 text: percent-encoded bytes that are not UTF-8 are refused before this runs.
    Who reads a key is the rule of what it holds (``STATE_READS``)."""
    policy, obj, what = state_read(key.lstrip("/"))
    await api.reach(min_height)
    await api.check(policy, caller, obj, what)
    return await asyncio.to_thread(api.reader.state_value, key.lstrip("/").encode())


@get("/v1/consensus/changes", sync_to_thread=True, operation_class=documented(errors=(400,)), opt={"read": PUBLIC},
     summary="Changes of the node keys and quorum after a height, each proven at the block that made it")
def consensus_changes(api: ApiDep, after: Annotated[int, QueryParameter(ge=0, le=MAX_HEIGHT, description="A block height.")] = 0) -> dict[str, Any]:
    """For a verifier to follow governance from its trust anchor (``verify.follow_consensus``)."""
    return api.node.consensus_changes(after)


# ---------------------------------------------------------------- about the chain

@get("/v1/status", summary="Node status", operation_class=documented(), opt={"read": PUBLIC})
async def status(api: ApiDep) -> dict[str, Any]:
    return api.node.status()


@get("/v1/genesis", summary="The trust anchor: chain id, founding organisations, node keys, quorum",
     operation_class=documented(), opt={"read": PUBLIC})
async def genesis(api: ApiDep) -> dict[str, Any]:
    g = api.node.genesis
    return {**to_builtins(g), "hash": g.hash().hex()}


@get("/v1/messages", summary="Message types, who may send them and their JSON schema",
     operation_class=documented(), opt={"read": PUBLIC})
async def messages(api: ApiDep) -> list[dict[str, Any]]:
    out = []
    for t, spec in sorted(api.node.registry.messages.items()):
        roles = spec.roles if isinstance(spec.roles, str) else sorted(spec.roles)
        out.append({"type": t, "module": spec.module, "doc": spec.doc, "roles": roles,
                    "cosigners": spec.cosigners is not None,
                    "schema": msgspec.json.schema(spec.struct)})
    return out


@get("/v1/params", summary="Chain parameters: value, bounds, meaning", operation_class=documented(),
     opt={"read": PUBLIC})
async def params(api: ApiDep) -> list[dict[str, Any]]:
    values = api.node.params
    out = []
    for p in api.node.registry.params.values():
        if not p.keyed:
            out.append({"name": p.name, "value": values.get(p.name, p.default), "default": p.default,
                        "min": p.min, "max": p.max, "doc": p.doc})
            continue
        # a keyed family: its pattern, then each key set by a vote
        out.append({"name": f"{p.name}:<{p.keyed}>", "value": p.default, "default": p.default,
                    "min": p.min, "max": p.max, "doc": p.doc})
        out += [{"name": n, "value": v, "default": p.default, "min": p.min, "max": p.max, "doc": p.doc}
                for n, v in sorted(values.items()) if n.partition(":")[0] == p.name and ":" in n]
    return out


@get("/v1/queries", summary="Module queries, their parameters and who may read them", operation_class=documented(),
     opt={"read": PUBLIC})
async def queries(api: ApiDep) -> list[dict[str, Any]]:
    return [{"module": m, "name": n, "path": f"/v1/q/{m}/{n}", "doc": spec.doc, "read": spec.read.describe(),
             "params": msgspec.json.schema(spec.params) if spec.params else None}
            for (m, n), spec in sorted(api.node.registry.queries.items())]


MIN_HEIGHT_PARAMETER = Parameter(
    name="min_height", param_in="query", required=False,
    description="Wait (up to 10 s) until the state reflects this block (read your own writes); -1: do not wait.",
    schema=Schema(type=OpenAPIType.INTEGER, minimum=-1, maximum=MAX_HEIGHT))


def _min_height(raw: str | None) -> int:
    """A module query's ``min_height`` (refused as ``invalid_query``, as its other parameters are)."""
    if raw is None:
        return -1
    if re.fullmatch(r"-1|0|[1-9][0-9]{0,15}", raw, re.ASCII) and int(raw) <= MAX_HEIGHT:
        return int(raw)
    raise QueryParamsInvalid(reason=f"min_height is a block height from -1 to {MAX_HEIGHT}, not {raw[:40]!r}")


def query_route(module: str, name: str, doc: str, params: type | None, read: ReadPolicy) -> Any:
    """One documented route per declared module query; ``min_height`` reads one's own writes."""
    names = frozenset(f.name for f in msgspec.structs.fields(params)) if params else frozenset()

    @get(f"/v1/q/{module}/{name}", summary=f"{module}.{name}", description=f"{doc}\n\nRead by: {read.describe()}.",
         operation_class=documented(errors=(400, 401, 403, 404),
                                    parameters=[*query_parameters(params), MIN_HEIGHT_PARAMETER],
                                    replace_parameters=True),
         operation_id=f"query_{module}_{name}", name=f"query-{module}-{name}",
         opt={"query": names | {"min_height"}, "module_query": True, "read": SIGNED})
    async def handler(request: Request, api: ApiDep, caller: CallerDep) -> dict[str, Any]:
        given = dict(request.query_params)
        await api.reach(_min_height(given.pop("min_height", None)))
        return await asyncio.to_thread(api.reader.query, module, name, given, caller)

    return handler


@get("/v1/q/{module:str}/{name:str}", summary="An unknown query", include_in_schema=False,
     opt={"query": ANY_PARAMETER, "read": PUBLIC})
async def unknown_query(module: FromPath[str], name: FromPath[str]) -> None:
    """Declared queries have routes of their own: anything else here is a query this node does not know."""
    raise UnknownQuery(name=f"{module}.{name}"[:120])


# ---------------------------------------------------------------- events

@get("/v1/events", summary="Committed events as server-sent events (resumable)", media_type="text/event-stream",
     opt={"read": SIGNED},
     operation_class=documented(errors=(400, 401), success_media="text/event-stream", parameters=[
         Parameter(name="Last-Event-ID", param_in="header", required=False,
                   description="Resume after this event id (height:tx:event[:derived]).",
                   schema=Schema(type=OpenAPIType.STRING, pattern=EVENT_ID_PATTERN))]))
async def events(request: Request, api: ApiDep, caller: CallerDep, from_height: Annotated[int, QueryParameter(ge=-1, le=MAX_HEIGHT, description="Start at this block (-1: at the head).")] = -1) -> Stream:
    """Reconnect with the ``Last-Event-ID`` header (or ``?from_height=H``) to miss nothing. A stream
    that cannot go on ends with one ``error`` event: an error body (``integrity_failure``,
    ``unavailable``) whose id is the last event sent. The stream carries only the events the
    signer may read (each event type declares who reads it); ids still advance past the others."""
    last = request.headers.get("last-event-id")
    after = parse_event_id(last) if last is not None else (
        from_height - 1 if from_height >= 0 else api.node.head_height, *AFTER_BLOCK)
    return Stream(_event_stream(api, after, _readable_events(api, caller)), media_type="text/event-stream",
                  headers=SSE_HEADERS)


def _readable_events(api: Api, caller: Caller) -> Callable[[str, dict[str, Any]], bytes]:
    """The stream's encoder for one caller: an event it may not read is encoded as nothing. Answers
    are remembered per event (its whole content: found by the payments attack, a cache keyed on a
    few fields let one readable transfer open every later one) until the state moves on."""
    if caller.reads_all:
        return _sse_event
    seen: dict[bytes, bool] = {}
    at = [-2]

    def encode(eid: str, ev: dict[str, Any]) -> bytes:
        height = api.node.flushed_height
        if height != at[0] or len(seen) > 10_000:
            seen.clear()
            at[0] = height
        data = msgspec.json.encode(ev)  # the whole event is the key: a policy may read any of its fields
        ok = seen.get(data)
        if ok is None:
            ok = seen[data] = api.reader.visible(caller, [ev])[0]
        return _sse(data.decode(), ev["type"], eid) if ok else b""

    return encode


async def _event_stream(api: ApiDep, after: tuple[int, int, int, int],
                        encode: Callable[[str, dict[str, Any]], bytes]) -> AsyncIterator[bytes]:
    """The node's event feed as server-sent events (``node.event_feed`` bounds what it holds). A
    refusal met on the way (damaged data, state not flushed in time) ends the stream with an
    ``error`` event whose id is the last event sent, so a client resumes there."""
    resume = after  # the last event sent (or where the stream started): the id of a final error event
    try:
        async for eid, piece in api.events.since(after, encode):
            if not piece:
                yield KEEP_ALIVE
                continue
            yield piece
            resume = parse_event_id(eid)
    except FeedEnds as end:
        yield _error_message(end.error, resume)
    except BlokautoError as err:  # known damage (DataIntegrity), or another refusal of a read
        log.warning("event stream ended: %s", err.message)
        yield _error_message(err, resume)
    except (DamagedData, sqlite3.DatabaseError) as exc:  # found by this read: the node turns unhealthy
        damage = read_damage(exc, "the block log", "the event stream", scope="block")
        if damage is None:
            raise
        err = refuse_damage(api.node, damage)
        log.warning("event stream ended: %s", err.message)
        yield _error_message(err, resume)


# ---------------------------------------------------------------- reports

@get("/v1/reports/{vin:str}", summary="A vehicle's verifiable history report (blokauto-report/1)",
     opt={"read": SHAREABLE}, operation_class=documented(errors=(400, 401, 403, 404)))
async def report_json(api: ApiDep, caller: CallerDep, vin: FromPath[str], min_height: MinHeight = -1,
                      share: ShareParam = None) -> dict[str, Any]:
    """Read by whoever may read the vehicle's history, or anyone with the holder's share link (``share``)."""
    return await api.report(vin, min_height, caller, share)


@get("/v1/reports/{vin:str}/pdf", summary="The report as a PDF", media_type="application/pdf", opt={"read": SHAREABLE},
     operation_class=documented(errors=(400, 401, 403, 404), success_media="application/pdf"))
async def report_pdf(api: ApiDep, caller: CallerDep, vin: FromPath[str], min_height: MinHeight = -1,
                     share: ShareParam = None) -> Response:
    report = await api.report(vin, min_height, caller, share)
    pdf = await asyncio.to_thread(render_pdf, report)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="history-{vin}.pdf"'})


@get("/reports/{vin:str}", summary="The report as a page that verifies itself in the browser",
     opt={"read": SHAREABLE}, operation_class=documented(errors=(400, 401, 403, 404), error_media="text/html"),
     exception_handlers={HTTPException: _html_http_error, BlokautoError: _html_error},
     media_type=MediaType.HTML, include_in_schema=True)
async def report_page(api: ApiDep, caller: CallerDep, vin: FromPath[str], min_height: MinHeight = -1,
                      share: ShareParam = None) -> Response:
    """A person reads this page: a refusal is a page too (with the same status and code). A browser
    opens it with the holder's share link (``?share=``); the page at / fetches it signed."""
    report = await api.report(vin, min_height, caller, share)
    return Response(render_html(report, api.node.genesis), media_type=MediaType.HTML)


@get("/", media_type=MediaType.HTML, include_in_schema=False, opt={"read": PUBLIC})
async def index() -> Response:
    return Response(web_asset("index.html"), media_type=MediaType.HTML)


#: Every route of the API but those made from the chain's declarations (the submission's schema, module queries).
ROUTES: list[Any] = [submit_batch, get_tx, latest_block, get_block, latest_checkpoint, get_checkpoint,
                     snapshot_chain, get_state, consensus_changes, status, genesis, messages, params, queries, events,
                     report_json, report_pdf, report_page, index, unknown_query]


def create_app(node: Node, *, authorities: frozenset[str] | None = None) -> Litestar:
    """The API of a started node: the route table, one route per module query, the shared ``Api``."""
    heights = HeightWaiter(lambda: node.flushed_height, node.on_flushed)
    assert node.reader is not None, "start the node before serving it"
    api = Api(node, heights, EventFeed(node.reader, head=lambda: node.head_height, heights=heights,
                                       subscribe=node.subscribe), Snapshots(), authorities=authorities)
    handlers = [submit_tx_route(signed_tx_schema(node.registry.codec.tx_type, node.chain)), *ROUTES, *TELEMETRY_ROUTES,
                *CONSOLE_ROUTES]
    handlers += [query_route(m, n, spec.doc, spec.params, spec.read)
                 for (m, n), spec in sorted(node.registry.queries.items())] + METRICS_ROUTES
    for h in handlers:  # every route of the API refuses query parameters it does not take
        h.opt.setdefault("query", _FROM_SIGNATURE)
        if "read" not in h.opt:
            raise TypeError(f"route {min(h.paths)} declares no read policy (opt={{'read': ...}}, core.access)")
    app = Litestar(
        route_handlers=[*handlers, create_static_files_router(path=SCHEMA_ASSETS, directories=[swagger_ui_path],
                                                              include_in_schema=False, name="schema-assets")],
        dependencies={"api": Provide(lambda: api, use_cache=True, sync_to_thread=False),
                      "caller": Provide(_caller, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(title="blokauto node API", version="1", path="/schema",
                                     description="A permissioned ledger for the whole life of a vehicle.",
                                     render_plugins=[_swagger_ui()]),
        request_max_body_size=MAX_OTHER_BODY,
        on_startup=[_more_read_threads],
        before_request=_checked_request,
        logging_config=None,
        debug=False,
    )
    app.state.node = node
    app.state.api = api
    instrument(app, node)  # GET /metrics and the timing of every request (api/metrics.py)
    return app
