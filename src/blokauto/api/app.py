"""The HTTP API: a thin adapter over the node, with routes generated from module declarations.

    POST /v1/txs                 submit one signed transaction -> 202 {"id"} (?wait=S: its receipt)
    POST /v1/txs/batch           submit a JSON array of transactions -> per-item id or error
    GET  /v1/txs/{id}            receipt with tx and receipt inclusion proofs and the checkpoint
    GET  /v1/blocks/{height|latest}, /v1/checkpoints/{height|latest}
    GET  /v1/state/{key}         value (or absence) with its state proof and checkpoint
    GET  /v1/consensus/changes   node-key and quorum changes after ?after=H, each proven (verify.follow_consensus)
    GET  /v1/q/{module}/{query}  module queries (one route per declared query)
    GET  /v1/events              server-sent events, resumable with Last-Event-ID or ?from_height
    GET  /v1/status, /v1/genesis, /v1/messages, /v1/params, /v1/queries
    GET  /schema                 OpenAPI
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, AsyncIterator

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Parameter, Schema
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path
from litestar.params import FromPath, FromQuery
from litestar.params import QueryParameter
from litestar.background_tasks import BackgroundTask
from litestar.response import File, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from ..core.encoding import to_builtins
from ..core.errors import BlokautoError, MalformedTx, NotFound, RequestError, TxTooLarge, Unavailable
from ..node.consensus_log import consensus_changes as _consensus_changes
from ..node.engine import CommittedBlock
from ..node.node import Node
from ..node.reader import ChainReader, block_events, parse_event_id
from ..report import build_report
from ..report.html import render_error_page, render_html, web_asset
from ..report.pdf import render_pdf
from .errors import EXCEPTION_HANDLERS
from .limits import HeightWaiter
from .openapi import BATCH_ITEMS, HTTP_DATE, TX_ID_PATTERN, documented, json_body, query_parameters, signed_tx_schema

MAX_BATCH = 5_000
MAX_BATCH_BYTES = 16 * 2**20  # a batch's body; checked as it arrives, before anything is decoded
MAX_BATCH_COMMAS = MAX_BATCH * 100  # bounds the items a batch body can make the decoder allocate
MAX_TX_BODY = 1_048_576  # the largest max_tx_bytes a chain may set; the chain's own limit is checked after
MAX_OTHER_BODY = 65_536
MAX_WAIT_S = 60.0
MAX_FLUSH_WAIT_S = 10.0
HEARTBEAT_S = 15.0
READ_THREADS = 32  # threads answering reads; waits for a height or a receipt hold none


class BadTxId(RequestError):
    code = "bad_tx_id"
    template = "{value!r} is not a transaction id (64 lowercase hex digits)."


class BatchTooLarge(RequestError):
    code = "batch_too_large"
    http_status = 413
    template = "A batch holds at most {limit} transactions, not {size}; split it."


class BatchBodyTooComplex(RequestError):
    code = "batch_too_complex"
    http_status = 413
    template = ("The batch body has {commas} commas; a batch of at most {limit} transactions has at most {max_commas}. "
                "Send an array of signed transactions, split into smaller batches.")


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"
    http_status = 415
    template = "Transactions are sent as application/json, not {got!r}; set the Content-Type header."


class UnknownQuery(NotFound):
    code = "unknown_query"
    template = "This node knows no query {name!r}; GET /v1/queries lists them (or run `blokauto query --list`)."


class HeightNotReached(NotFound):
    code = "height_not_reached"
    template = ("Block {height} is not committed yet (this node is at height {head}); ask again once it is "
                "(GET /v1/txs/ID?wait=S answers with the height of a transaction).")


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
    return Response(render_error_page(err), status_code=err.http_status, media_type=MediaType.HTML)


def _html_http_error(request: Request, exc: HTTPException) -> Response:
    err = RequestError(reason=str(exc.detail)) if exc.status_code < 500 else Unavailable(reason=str(exc.detail))
    return Response(render_error_page(err), status_code=exc.status_code, media_type=MediaType.HTML)


async def _messages(events: list[tuple[str, dict[str, Any]]]) -> AsyncIterator[ServerSentEventMessage]:
    """Events as SSE messages, letting the loop run every few (a client that went away is noticed at
    once, instead of each further write failing and being logged)."""
    for n, (eid, ev) in enumerate(events, start=1):
        yield ServerSentEventMessage(data=msgspec.json.encode(ev).decode(), event=ev["type"], id=eid)
        if n % 64 == 0:
            await asyncio.sleep(0)


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
MinHeight = Annotated[int, QueryParameter(ge=-1, le=MAX_HEIGHT, description=(
    "Wait (up to 10 s) until the state reflects this block (read your own writes); -1: do not wait."))]
WaitSeconds = Annotated[float, QueryParameter(ge=0, le=MAX_WAIT_S,
                                                 description="Seconds to wait for the receipt (0-60).")]


def create_app(node: Node) -> Litestar:
    engine = node.engine
    registry = node.registry
    heights = HeightWaiter(engine.state)
    signed_tx = signed_tx_schema(registry.codec.tx_type, engine.chain)

    async def _reach(height: int, timeout: float = MAX_FLUSH_WAIT_S) -> None:
        """Wait (holding no thread) until queries read ``height``; a block not committed yet is refused."""
        head = engine.head.height  # type: ignore[union-attr]
        if height > head:
            raise HeightNotReached(height=height, head=head)
        await heights.wait(height, timeout)

    reader = ChainReader(registry, engine.blocks, engine.state, health=node.health, node_keys=lambda: engine.known_nodes,
                         own_node=engine.own_node)

    async def _receipt(txid: bytes, wait: float) -> dict[str, Any]:
        if wait > 0:
            fut = engine.receipt_future(txid)
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut), wait)
            except asyncio.TimeoutError:
                pass
            finally:
                engine.forget_waiter(txid, fut)
        return await asyncio.to_thread(lambda: reader.tx(txid, engine.locate(txid)))

    @post("/v1/txs", status_code=202, summary="Submit a signed transaction", request_max_body_size=MAX_TX_BODY,
          operation_class=documented(errors=(400, 401, 403, 404, 409, 413, 415),
                                     request_body=json_body(signed_tx, "One signed transaction."),
                                     also_ok={200: "With ?wait: the receipt, as GET /v1/txs/{tx_id} answers it."}))
    async def submit_tx(request: Request, wait: WaitSeconds = 0.0) -> Response:
        """Stateless checks, replay and authorisation run before the answer: a refusal is a 4xx
        with a stable code. ``wait`` (seconds, up to 60) also waits for the receipt."""
        _json_body(request)
        raw = await request.body()
        limit = engine.params.get("max_tx_bytes", 65_536)
        if len(raw) > limit:
            raise TxTooLarge(size=len(raw), limit=limit)
        txid = await asyncio.wrap_future(node.submit_one(raw))
        if wait > 0:
            return Response(await _receipt(txid, _wait_s(wait)), status_code=200)
        return Response({"id": txid.hex(), "status": "accepted"}, status_code=202)

    @post("/v1/txs/batch", status_code=200, summary="Submit many signed transactions",
          request_max_body_size=MAX_BATCH_BYTES,
          operation_class=documented(errors=(400, 413, 415), request_body=json_body(
              {"type": "array", "items": BATCH_ITEMS, "maxItems": MAX_BATCH}, f"Up to {MAX_BATCH} signed transactions.")))
    async def submit_batch(request: Request) -> dict[str, Any]:
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
        results = await asyncio.wrap_future(node.submit([bytes(i) for i in items]).future)
        out = [{"error": r.to_dict()} if isinstance(r, Exception) else {"id": r.hex()} for r in results]
        return {"accepted": sum(1 for r in out if "id" in r), "results": out}

    @get("/v1/txs/{tx_id:str}", summary="A transaction's receipt with inclusion proofs",
         operation_class=documented(errors=(400, 404), path_patterns={"tx_id": TX_ID_PATTERN}))
    async def get_tx(tx_id: FromPath[str], wait: WaitSeconds = 0.0) -> dict[str, Any]:
        return await _receipt(_txid(tx_id), _wait_s(wait))

    @get("/v1/blocks/latest", sync_to_thread=True, summary="The newest block", operation_class=documented(errors=(400,)))
    def latest_block(full: FromQuery[bool] = False) -> dict[str, Any]:
        return reader.block(engine.head.height, full=full)  # type: ignore[union-attr]

    @get("/v1/blocks/{height:int}", sync_to_thread=True, summary="A block's header, ids and attestations",
         operation_class=documented(errors=(400, 404)))
    def get_block(height: FromPath[int], full: FromQuery[bool] = False) -> dict[str, Any]:
        return reader.block(height, full=full)

    @get("/v1/checkpoints/latest", sync_to_thread=True, summary="The newest checkpoint",
         operation_class=documented())
    def latest_checkpoint() -> dict[str, Any]:
        return to_builtins(reader.checkpoint(engine.head.height))  # type: ignore[union-attr]

    @get("/v1/checkpoints/{height:int}", sync_to_thread=True, summary="A header with its node attestations",
         operation_class=documented(errors=(404,)))
    def get_checkpoint(height: FromPath[int]) -> dict[str, Any]:
        return to_builtins(reader.checkpoint(height))

    @get("/v1/snapshot/chain", sync_to_thread=True, summary="A consistent copy of this node's block log (chain.db)",
         operation_class=documented(success_media="application/vnd.sqlite3", success_headers={
             "last-modified": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, description=HTTP_DATE)),
             "etag": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))}),
         media_type="application/vnd.sqlite3")
    def snapshot_chain() -> File:
        """For a new node joining the chain: every block, receipt and attestation, and the ordering
        stream position; `blokauto node snapshot` checks it against a quorum checkpoint."""
        fd, name = tempfile.mkstemp(prefix="blokauto-snapshot-", suffix=".db")
        os.close(fd)
        engine.blocks.backup_to(Path(name))
        return File(path=name, filename="chain.db", media_type="application/vnd.sqlite3",
                    background=BackgroundTask(os.remove, name))

    @get("/v1/state/{key:path}", summary="A state value with its proof", operation_class=documented(errors=(400, 404)))
    async def get_state(key: FromPath[str], min_height: MinHeight = -1) -> dict[str, Any]:
        """``min_height`` waits (up to 10 s) until the state reflects that block, for read-your-writes."""
        if min_height > engine.state.flushed_height:
            await _reach(min_height)
        return await asyncio.to_thread(reader.state_value, key.lstrip("/").encode())

    @get("/v1/consensus/changes", sync_to_thread=True, operation_class=documented(errors=(400,)),
         summary="Changes of the node keys and quorum after a height, each proven at the block that made it")
    def consensus_changes(after: Annotated[int, QueryParameter(ge=0, le=MAX_HEIGHT, description="A block height.")] = 0) -> dict[str, Any]:
        """For a verifier to follow governance from its trust anchor (``verify.follow_consensus``)."""
        return _consensus_changes(engine.blocks, engine.data_dir / "chain.db", after)

    @get("/v1/status", summary="Node status", operation_class=documented())
    async def status() -> dict[str, Any]:
        return node.status()

    @get("/v1/genesis", summary="The trust anchor: chain id, founding organisations, node keys, quorum",
         operation_class=documented())
    async def genesis() -> dict[str, Any]:
        return {**to_builtins(engine.genesis), "hash": engine.genesis.hash().hex()}

    @get("/v1/messages", summary="Message types, who may send them and their JSON schema",
         operation_class=documented())
    async def messages() -> list[dict[str, Any]]:
        out = []
        for t, spec in sorted(registry.messages.items()):
            roles = spec.roles if isinstance(spec.roles, str) else sorted(spec.roles)
            out.append({"type": t, "module": spec.module, "doc": spec.doc, "roles": roles,
                        "cosigners": spec.cosigners is not None,
                        "schema": msgspec.json.schema(spec.struct)})
        return out

    @get("/v1/params", summary="Chain parameters: value, bounds, meaning", operation_class=documented())
    async def params() -> list[dict[str, Any]]:
        values = engine.params
        return [{"name": p.name, "value": values.get(p.name, p.default), "default": p.default,
                 "min": p.min, "max": p.max, "doc": p.doc} for p in registry.params.values()]

    @get("/v1/queries", summary="Module queries and their parameters", operation_class=documented())
    async def queries() -> list[dict[str, Any]]:
        return [{"module": m, "name": n, "path": f"/v1/q/{m}/{n}", "doc": spec.doc,
                 "params": msgspec.json.schema(spec.params) if spec.params else None}
                for (m, n), spec in sorted(registry.queries.items())]

    def query_route(module: str, name: str, doc: str, params: type | None):  # one documented route per query
        @get(f"/v1/q/{module}/{name}", sync_to_thread=True, summary=f"{module}.{name}", description=doc,
             operation_class=documented(errors=(400, 404), parameters=query_parameters(params),
                                        replace_parameters=True),
             operation_id=f"query_{module}_{name}", name=f"query-{module}-{name}")
        def handler(request: Request) -> dict[str, Any]:
            return reader.query(module, name, dict(request.query_params))

        return handler

    @get("/v1/q/{module:str}/{name:str}", summary="An unknown query", include_in_schema=False)
    async def unknown_query(module: FromPath[str], name: FromPath[str]) -> None:
        """Declared queries have routes of their own: anything else here is a query this node does not know."""
        raise UnknownQuery(name=f"{module}.{name}"[:120])

    @get("/v1/events", summary="Committed events as server-sent events (resumable)", media_type="text/event-stream",
         operation_class=documented(errors=(400,), success_media="text/event-stream", parameters=[
             Parameter(name="Last-Event-ID", param_in="header", required=False,
                       description="Resume after this event id (height:tx:event[:derived]).",
                       schema=Schema(type=OpenAPIType.STRING, pattern=r"^\d{1,18}(:\d{1,18}:\d{1,18}(:\d{1,18})?)?$"))]))
    async def events(request: Request, from_height: Annotated[int, QueryParameter(ge=-1, le=MAX_HEIGHT, description="Start at this block (-1: at the head).")] = -1) -> ServerSentEvent:
        """Reconnect with the ``Last-Event-ID`` header (or ``?from_height=H``) to miss nothing."""
        last = request.headers.get("last-event-id")
        end = 1 << 62
        after = parse_event_id(last) if last is not None else (from_height - 1 if from_height >= 0 else engine.head.height, end, end, end)  # type: ignore[union-attr]
        return ServerSentEvent(_event_stream(after))

    async def _event_stream(after: tuple[int, int, int, int]) -> AsyncIterator[ServerSentEventMessage]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CommittedBlock | None] = asyncio.Queue()

        def on_block(block: CommittedBlock) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, block)

        unsubscribe = engine.subscribe(on_block)
        try:
            # Catch up from the block log, then follow live blocks, skipping what was sent.
            head = engine.head.height  # type: ignore[union-attr]
            if after[0] <= head:  # derived events read indexes: they must hold the backlog's blocks first
                if not await heights.wait(head, 30.0):
                    return  # the client reconnects with Last-Event-ID and misses nothing
                backlog = await asyncio.to_thread(lambda: list(reader.events(after, head)))
                async for message in _messages(backlog):
                    yield message
            sent_height = max(head, after[0])
            while True:
                try:
                    block = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
                    continue
                if block is None or queue.qsize() > 10_000:
                    return  # the client is too slow: it reconnects with Last-Event-ID and misses nothing
                h = block.header.height
                if h <= sent_height:
                    continue
                if h > sent_height + 1:  # should not happen; fill any gap from the log
                    end = 1 << 62
                    if not await heights.wait(h - 1, 30.0):
                        return
                    gap = await asyncio.to_thread(lambda: list(reader.events((sent_height, end, end, end), h - 1)))
                    async for message in _messages(gap):
                        yield message
                expand = None
                if reader.expands(block.receipts):  # derived events read indexes: wait until they hold block h
                    if not await heights.wait(h, 30.0):
                        return
                    expand = reader.expand
                events = await asyncio.to_thread(
                    lambda: list(block_events(h, block.header.time, block.tx_ids, block.receipts, expand=expand)))
                async for message in _messages(events):
                    yield message
                sent_height = h
        finally:
            unsubscribe()

    async def _report(vin: str, min_height: int) -> dict[str, Any]:
        if min_height > engine.state.flushed_height:
            await _reach(min_height)
        node.health.check_state()
        return await asyncio.to_thread(build_report, engine.blocks, engine.state, vin, reader.checkpoint)

    @get("/v1/reports/{vin:str}", summary="A vehicle's verifiable history report (blokauto-report/1)",
         operation_class=documented(errors=(400, 404)))
    async def report_json(vin: FromPath[str], min_height: MinHeight = -1) -> dict[str, Any]:
        return await _report(vin, min_height)

    @get("/v1/reports/{vin:str}/pdf", summary="The report as a PDF", media_type="application/pdf",
         operation_class=documented(errors=(400, 404), success_media="application/pdf"))
    async def report_pdf(vin: FromPath[str], min_height: MinHeight = -1) -> Response:
        report = await _report(vin, min_height)
        pdf = await asyncio.to_thread(render_pdf, report)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="history-{vin}.pdf"'})

    @get("/reports/{vin:str}", summary="The report as a page that verifies itself in the browser",
         operation_class=documented(errors=(400, 404), error_media="text/html"),
         exception_handlers={HTTPException: _html_http_error, BlokautoError: _html_error},
         media_type=MediaType.HTML, include_in_schema=True)
    async def report_page(vin: FromPath[str], min_height: MinHeight = -1) -> Response:
        """A person reads this page: a refusal is a page too (with the same status and code)."""
        report = await _report(vin, min_height)
        return Response(render_html(report, engine.genesis), media_type=MediaType.HTML)

    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def index() -> Response:
        return Response(web_asset("index.html"), media_type=MediaType.HTML)

    handlers: list[Any] = [submit_tx, submit_batch, get_tx, latest_block, get_block, latest_checkpoint,
                           get_checkpoint, snapshot_chain, get_state, status, genesis, messages, params, queries, events,
                           report_json, report_pdf, report_page, index, unknown_query]
    handlers.append(consensus_changes)
    handlers += [query_route(m, n, spec.doc, spec.params) for (m, n), spec in sorted(registry.queries.items())]
    handlers.append(create_static_files_router(path=SCHEMA_ASSETS, directories=[swagger_ui_path],
                                               include_in_schema=False, name="schema-assets"))

    app = Litestar(
        route_handlers=handlers,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(title="blokauto node API", version="1", path="/schema",
                                     description="A permissioned ledger for the whole life of a vehicle.",
                                     render_plugins=[_swagger_ui()]),
        request_max_body_size=MAX_OTHER_BODY,
        on_startup=[_more_read_threads],
        logging_config=None,
        debug=False,
    )
    app.state.node = node
    return app
