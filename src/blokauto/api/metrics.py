"""``GET /metrics``: the node's numbers in the Prometheus text format, and the timing of every request.

The route is public: a Prometheus scraper cannot sign RFC 9421 requests, and what it serves is
counts, heights, sizes and timings, labelled by route template, method, status class and error
code only (never a path, a VIN, a key or a query string), so it tells nobody anything about a
person or a vehicle. docs/operations.md lists every metric and the alerts built on them.

Most numbers are read from the node when a scrape asks (``NodeCollector``: ``Node.status()``,
``Node.monitoring()``, the data folder's file sizes), not counted as things happen: the hot path
pays only for what a scrape cannot find out afterwards, a few dictionary operations per request
(``RequestMetrics``: its duration by route template, method and status class; the code of a
refusal) and per block (``Metrics.block_committed``: its commit time, size and failed receipts).

Each app has its own ``CollectorRegistry`` (one process may serve several nodes, as tests do),
never prometheus-client's global one. ``RequestMetrics`` wraps the app's router, inside
Litestar's own exception handling, so it sees every answer the app gives, an unknown path's 404
included; what ``ClientLimits`` and the connection guard refuse below it is read from their own
counters (``Metrics.serve_through``). With JSON logs (``blokauto.logs``), it also writes one
access line per request (logger ``blokauto.access``).
"""

from __future__ import annotations

import logging
import os
import re
from time import perf_counter
from typing import Any, Iterable

import msgspec
from litestar import Litestar, Request, Response, get
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..core.access import PUBLIC
from ..logs import ACCESS_LOGGER
from ..node.node import CommittedBlock, Node

disable_created_metrics()  # no ``*_created`` series beside every counter and histogram

access_log = logging.getLogger(ACCESS_LOGGER)

#: Files of the data folder whose size is watched (the write-ahead logs grow between checkpoints).
DATA_FILES = ("chain.db", "chain.db-wal", "state.db", "state.db-wal", "samples.db", "samples.db-wal", "intake.journal")
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BLOCK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BLOCK_TX_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000)
#: Methods counted by name; any other (a client may send any token) is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (an unknown path is never a label value).
UNMATCHED = "unmatched"
MAX_CODES = 256  # error codes counted apart; more (there are fewer in the code base) count as "other"
_REFUSAL_BODY = 65_536  # bytes of a refusal's body kept to read its code
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HTML_CODE = re.compile(rb'<code id="code">([a-z0-9_]+)</code>')  # report.html.render_error_page
_TYPED_PARAMETER = re.compile(r":[a-z]+}")  # /v1/blocks/{height:int} -> /v1/blocks/{height}


class _Error(msgspec.Struct):
    code: str


class _ErrorBody(msgspec.Struct):
    error: _Error


_decode_error = msgspec.json.Decoder(_ErrorBody).decode


def refusal_code(body: bytes) -> str:
    """The stable code of a refusal's body (the API's JSON error, or the report page's), else "unknown"."""
    try:
        code = _decode_error(body).error.code
    except (msgspec.DecodeError, msgspec.ValidationError):
        found = _HTML_CODE.search(body)
        code = found.group(1).decode() if found else ""
    return code if _CODE.fullmatch(code) else "unknown"


class Metrics:
    """One app's metrics: its registry, what requests and blocks count, and what scrapes read."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "blokauto_http_request_duration_seconds", "Time to answer an HTTP request, by route template, method "
            "and status class (an event stream counts until it ends).", ("route", "method", "status"),
            registry=self.registry, buckets=REQUEST_BUCKETS)
        self.block_seconds = Histogram(
            "blokauto_block_commit_seconds", "Time to produce a block: execution, the durable append to chain.db "
            "and applying its changes.", registry=self.registry, buckets=BLOCK_BUCKETS)
        self.block_txs = Histogram("blokauto_block_transactions", "Transactions per committed block.",
                                   registry=self.registry, buckets=BLOCK_TX_BUCKETS)
        self.refusals: dict[str, int] = {}  # by code; changed on the event loop's thread only
        self.failed: dict[str, int] = {}  # failure receipts by code; changed on the ordering thread only
        self.guard: Any = None  # api.connections.ConnectionGuard and api.limits.ClientLimits, when served
        self.limits: Any = None
        self._timers: dict[tuple[str, str, int], Any] = {}
        self._routes: dict[str, str] = {}
        self.registry.register(NodeCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._unsubscribe = node.subscribe(self.block_committed)

    def serve_through(self, guard: Any, limits: Any) -> None:
        """Count what the connection guard and the per-client limit refuse before a request reaches the app."""
        self.guard, self.limits = guard, limits

    def close(self) -> None:
        self._unsubscribe()

    def block_committed(self, block: CommittedBlock) -> None:
        """On the ordering thread, once per block."""
        if block.seconds:
            self.block_seconds.observe(block.seconds)
        self.block_txs.observe(len(block.tx_ids))
        for receipt in block.receipts:
            if not receipt.ok:
                self.failed[receipt.code] = self.failed.get(receipt.code, 0) + 1

    def request_done(self, scope: dict[str, Any], status: int, refusal: bytes | None, seconds: float) -> None:
        """On the event loop's thread, once per request."""
        template = scope.get("path_template")
        route = UNMATCHED if template is None else self._routes.get(template)
        if route is None:
            route = self._routes[template] = _TYPED_PARAMETER.sub("}", template)
        method = scope.get("method", "")
        if method not in METHODS:
            method = "other"
        key = (route, method, status // 100)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = self.request_seconds.labels(route, method, f"{status // 100}xx" if status
                                                                    else "none")
        timer.observe(seconds)
        code = None
        if refusal is not None:
            code = refusal_code(refusal)
            if code not in self.refusals and len(self.refusals) >= MAX_CODES:
                code = "other"
            self.refusals[code] = self.refusals.get(code, 0) + 1
        if access_log.isEnabledFor(logging.INFO):
            caller = scope.get("state", {}).get("caller")
            fields = {"method": method, "route": route, "path": scope.get("path", "")[:512], "status": status,
                      "duration_ms": round(seconds * 1000, 3), "client": (scope.get("client") or ("",))[0]}
            if code is not None:
                fields["code"] = code
            if caller is not None and caller.did:
                fields["caller"] = caller.did
            access_log.info("request", extra=fields)


class RequestMetrics:
    """ASGI middleware around the app's router: times each request and reads a refusal's code."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        answer: list[Any] = [0, None]  # status, the body of a refusal (status 400 and above)

        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                if answer[0] >= 400:
                    answer[1] = b""
            elif answer[1] is not None and len(answer[1]) < _REFUSAL_BODY:
                answer[1] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.request_done(scope, answer[0], answer[1], perf_counter() - started)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(kind: type, name: str, doc: str, label: str, values: dict[str, int]) -> Metric:
    family = kind(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class NodeCollector(Collector):
    """The node's own numbers, read at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        node = m.node
        st = node.status()
        mon = node.monitoring()
        height, flushed = st["height"], st["flushed_height"]
        jetstream = st.get("ordering") == "jetstream"
        info = InfoMetricFamily("blokauto_node", "The chain, this node's key and how it orders transactions.")
        info.add_metric([], {"chain": st["chain"], "node": st["node"], "ordering": st.get("ordering", "solo")})
        yield info
        yield _gauge("blokauto_healthy", "1 while the node orders, executes and serves data it can prove; 0 once "
                     "its engine stopped or it found damaged data (GET /v1/status says why).", int(st["healthy"]))
        yield _gauge("blokauto_engine_running", "1 while the engine orders and executes blocks; 0 once it stopped on "
                     "an error (a divergence, a stream gap, damaged data).", int(mon["failure"] is None))
        yield _gauge("blokauto_diverged", "1 once a quorum of the consortium attested a block with another state "
                     "root than this node committed (the engine stopped).", int(mon["failure"] == "Divergence"))
        yield _gauge("blokauto_integrity_findings", "Damage the node found in its data folder (reads and the "
                     "scrubber); any is reported in GET /v1/status.", len(st["integrity"]["damage"]))
        yield _gauge("blokauto_chain_height", "Height of the newest block this node committed.", height)
        yield _gauge("blokauto_flushed_height", "Height state.db reached (queries and proofs read it).", flushed)
        yield _gauge("blokauto_flush_lag_blocks", "Blocks committed that state.db does not hold yet.",
                     max(0, height - flushed))
        if st["time"] is not None:
            yield _gauge("blokauto_head_block_timestamp_seconds", "Time of the newest block (its header's, Unix "
                         "seconds).", st["time"] / 1000)
        yield CounterMetricFamily("blokauto_committed_transactions", "Transactions committed in blocks since the "
                                  "node started (failed ones included).", value=st["committed_txs"])
        yield _by(CounterMetricFamily, "blokauto_failed_transactions", "Transactions included with a failure "
                  "receipt (a domain rule refused them at execution), by error code.", "code", m.failed)
        yield _by(CounterMetricFamily, "blokauto_refused_transactions", "Submitted transactions refused before "
                  "ordering (stateless checks, replay, authorisation), by error code.", "code", mon["refused"])
        yield _gauge("blokauto_intake_pending_transactions", "Transactions accepted and waiting to be ordered into "
                     "a block (solo: the block being formed included; networked: until read back from the stream).",
                     mon["ordering_pending"])
        yield _gauge("blokauto_verifier_queue_transactions", "Transactions in the signature-checking workers.",
                     mon["verifying"])
        yield _gauge("blokauto_verifier_lag_seconds", "How long the oldest transaction in the signature-checking "
                     "workers has waited (0 when none waits).", round(mon["verifying_oldest_s"], 6))
        yield _gauge("blokauto_verifier_workers", "Signature-checking worker processes.", st["workers"])
        yield _gauge("blokauto_quorum", "Attestations a checkpoint needs (1 for a solo node).", mon["quorum"])
        if mon["quorum_height"] is not None:
            yield _gauge("blokauto_quorum_lag_blocks", "Blocks after the newest one that a quorum of node keys "
                         f"attested (0 for a solo node; at most {Node.QUORUM_LAG_SEARCHED} are searched).",
                         max(0, height - mon["quorum_height"]))
        yield _gauge("blokauto_ordering_connected", "1 while the node reaches its ordering service (always, solo; "
                     "the NATS connection, networked).", int(st.get("nats_connected", True)))
        if jetstream:
            yield _gauge("blokauto_stream_sequence", "The last ordering-stream sequence read.", st["stream_seq"])
        yield CounterMetricFamily("blokauto_dropped_stream_messages", "Ordering-stream messages left out of blocks "
                                  "(failing the stateless checks, or repeating a transaction).",
                                  value=st.get("dropped_messages", 0))
        yield CounterMetricFamily("blokauto_refused_attestations", "Attestations refused: unreadable, a bad "
                                  "signature, or by a key that is not a node key.", value=st.get("refused_attestations", 0))
        yield CounterMetricFamily("blokauto_peer_attestations", "Attestations fetched from peers' APIs for blocks "
                                  "that lacked a quorum.", value=st.get("peer_attestations", 0))
        scrub = st["integrity"].get("last_scrub")
        if scrub:
            yield _gauge("blokauto_scrub_last_timestamp_seconds", "When the scrubber last finished a pass (Unix "
                         "seconds).", scrub["finished_at_ms"] / 1000)
            yield _gauge("blokauto_scrub_last_findings", "Problems the scrubber's last pass found.", scrub["findings"])
            yield _gauge("blokauto_scrub_last_duration_seconds", "How long the scrubber's last pass took.",
                         scrub["seconds"])
        yield from self._files(node)
        yield from self._http(m)

    @staticmethod
    def _files(node: Node) -> Iterable[Metric]:
        sizes = GaugeMetricFamily("blokauto_data_file_bytes", "Size of a file of the data folder (a -wal file is a "
                                  "database's write-ahead log).", labels=["file"])
        for name in DATA_FILES:
            try:
                sizes.add_metric([name], os.stat(node.data_dir / name).st_size)
            except OSError:
                continue  # not there (yet): a networked node has no intake journal, a new one no samples.db
        yield sizes
        try:
            disk = os.statvfs(node.data_dir)
        except OSError:
            return
        yield _gauge("blokauto_data_disk_free_bytes", "Space left for the node on the data folder's file system.",
                     disk.f_bavail * disk.f_frsize)
        yield _gauge("blokauto_data_disk_size_bytes", "Size of the data folder's file system.",
                     disk.f_blocks * disk.f_frsize)

    @staticmethod
    def _http(m: Metrics) -> Iterable[Metric]:
        refusals = dict(m.refusals)
        if m.limits is not None and m.limits.refused:
            refusals["too_many_requests"] = refusals.get("too_many_requests", 0) + m.limits.refused
        yield _by(CounterMetricFamily, "blokauto_http_refusals", "HTTP requests refused (status 400 and above), "
                  "by the error code of the answer.", "code", refusals)
        if m.guard is not None:
            yield _gauge("blokauto_http_connections_open", "Open HTTP connections.", m.guard.count)
            yield CounterMetricFamily("blokauto_http_connections_refused", "Connections refused over the caps per "
                                      "client address or in all (too_many_connections, unavailable).",
                                      value=m.guard.refused)
            yield CounterMetricFamily("blokauto_http_connections_timed_out", "Connections closed because a request "
                                      "head or body did not arrive in time (request_timeout, request_body_timeout).",
                                      value=m.guard.timed_out)


@get("/metrics", sync_to_thread=True, include_in_schema=False, opt={"read": PUBLIC}, name="metrics")
def metrics(request: Request) -> Response:
    """The node's metrics for Prometheus (or OpenMetrics, if the scraper asks for it)."""
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(request.app.state.metrics.registry), media_type=media_type)


ROUTES: list[Any] = [metrics]


def instrument(app: Litestar, node: Node) -> Metrics:
    """Give ``app`` its metrics: the registry ``/metrics`` serves and the timing of every request."""
    m = app.state.metrics = Metrics(node)
    app.asgi_handler = RequestMetrics(app.asgi_handler, m)
    app.on_shutdown.append(m.close)
    return m
