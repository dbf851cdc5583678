"""The node's link to NATS JetStream: publish to the ordering stream, follow it, exchange attestations.

nats-py is asyncio; the link runs its own event loop in a thread and hands what it receives to
the engine through plain callbacks. Everything the engine needs to form blocks comes from the
stream itself: each message's stream sequence and the timestamp the stream leader stored with it
(read exactly, in nanoseconds, from the delivery subject).

Publishing a transaction uses the hash of its canonical bytes as the JetStream message id, so the
stream stores it once however many times it is sent (a client retrying, a node retrying through a
leader election), and no one can take the id first with other bytes.
A publish is confirmed only by the stream's acknowledgement, which with ``sync_interval: always``
on a replicated stream means a quorum of servers has it on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any, Callable

import nats
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from .faults import NodeFault
from .netconfig import NetworkSettings, Subjects

log = logging.getLogger("blokauto.jetstream")

RETRYABLE = (asyncio.TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError,
             nats.js.errors.NoStreamResponseError, nats.errors.ConnectionClosedError,
             nats.errors.ConnectionReconnectingError, nats.errors.StaleConnectionError,
             nats.errors.OutboundBufferLimitError)


def content_id(data: bytes) -> str:
    """The JetStream message id of a transaction or attestation: the hash of its exact bytes.

    JetStream drops a repeated id whatever the subject or payload, so an id anyone can predict
    (a tx id, a node and height) would let a member publish junk under it first and make the
    genuine message vanish. Bytes-derived ids still collapse honest retries and the same canonical
    transaction sent by several nodes; a different encoding of one transaction is left out at
    execution as a repeat.
    """
    return hashlib.sha256(data).hexdigest()


class OrderingUnavailable(Exception):
    """The ordering service did not confirm in time; the same transaction may safely be sent again.
    Neither a refusal nor a fault: the reason a submission is answered ``Unavailable`` (retryable)."""


class OrderStreamReplaced(NodeFault):
    """The ordering stream is not the one this node's blocks were formed from (deleted and created again)."""

    def __init__(self, stream: str, pinned: str, current: str) -> None:
        self.stream, self.pinned, self.current = stream, pinned, current
        super().__init__(
            f"the ordering stream {stream} is not the one this node's blocks were formed from: chain.db records "
            f"the stream created at {pinned}, but the NATS servers now hold one created at {current}. It was "
            f"deleted and created again, so its sequence numbers start over and no longer match the stream position "
            f"in chain.db; blocks formed from it would fork the chain. The node refuses to run. Restore the original "
            f"stream from a backup of the NATS servers' JetStream stores; or, if the consortium deliberately moved to "
            f"a new stream, start this node from an empty data folder (or from a snapshot of a node that follows the "
            f"new stream).")


def delivery_position(reply: str) -> tuple[int, int]:
    """(stream sequence, stored timestamp in ns) from a JetStream delivery's ack subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` (9 tokens), or the
    v2 form with domain and account hash (12 tokens).
    """
    t = reply.split(".")
    if len(t) == 9:
        return int(t[5]), int(t[7])
    if len(t) >= 11:
        return int(t[7]), int(t[9])
    raise ValueError(f"{reply!r} is not a JetStream delivery subject")


class JetStreamLink:
    """``start(from_seq)``, then ``publish_txs`` / ``publish_cut`` / ``publish_attestation``.

    ``on_order(seq, kind, ts_ms, data)`` receives every message of the ordering stream from
    ``from_seq`` on, in order (``kind`` is ``"tx"`` or ``"cut"``); ``on_attestation(data)``
    every attestation message (old ones included, for a node catching up).
    """

    #: how often a connected link asks whether the ordering stream is still the one it started on
    IDENTITY_CHECK_S = 3.0

    def __init__(self, settings: NetworkSettings, chain: str, *, on_order: Callable[[int, str, int, bytes], None],
                 on_attestation: Callable[[bytes], None], publish_timeout_s: float = 15.0,
                 on_reconnect: Callable[[], None] = lambda: None,
                 on_fatal: Callable[[BaseException], None] = lambda exc: None, data_dir: Path | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.subjects = Subjects(chain)
        self.on_order = on_order
        self.on_attestation = on_attestation
        self.on_reconnect = on_reconnect
        self.on_fatal = on_fatal
        self.publish_timeout_s = publish_timeout_s
        self.order_identity: str | None = None  # the ORDER stream's creation time, as its info reports it
        self._pinned: str | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jetstream", daemon=True)
        self.nc: Any = None
        self.js: Any = None
        self._subs: list[Any] = []
        self.connected = False
        self.last_error: str | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self, from_seq: int, timeout: float = 30.0, *, pinned: str | None = None) -> str:
        """Connect, check both streams exist and that the ordering stream is the ``pinned`` one (its
        identity, if this node recorded one), and follow both. Returns the ordering stream's identity."""
        self._thread.start()
        self._pinned = pinned
        try:
            self._call(self._connect(from_seq)).result(timeout)
        except OrderStreamReplaced:
            self.close()
            raise
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            self.close()
            raise ConnectionError(f"could not reach the ordering service at {', '.join(self.settings.servers)} as "
                                  f"{self.settings.identity} ({type(exc).__name__}: {exc}); check that the NATS "
                                  f"servers run and the credentials and CA in network.json") from None
        assert self.order_identity is not None
        return self.order_identity

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close()).result(10)
        except (nats.errors.Error, OSError, CancelledError) as exc:  # closing must not raise past shutdown
            log.warning("closing the NATS connection: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _call(self, coro: Any) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _connect(self, from_seq: int) -> None:
        s = self.settings
        self.nc = await nats.connect(
            **s.connect_options(self.data_dir), name=f"blokauto-{s.org}",
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.25, connect_timeout=2,
            ping_interval=2, max_outstanding_pings=3,
            error_cb=self._on_error, disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect)
        self.connected = True
        self.js = self.nc.jetstream(timeout=5)
        sub = self.subjects
        for stream in (sub.order_stream, sub.attest_stream):
            try:
                info = await self.js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                raise RuntimeError(f"the NATS servers have no stream {stream}; create the network's streams first "
                                   f"(`blokauto network up` does)") from None
            if stream == sub.order_stream:
                self.order_identity = stream_identity(info)
                if self._pinned is not None and self._pinned != self.order_identity:
                    raise OrderStreamReplaced(stream, self._pinned, self.order_identity)
                self._pinned = self.order_identity
        cfg = ConsumerConfig(opt_start_seq=max(1, from_seq)) if from_seq > 1 else ConsumerConfig()
        policy = DeliverPolicy.BY_START_SEQUENCE if from_seq > 1 else DeliverPolicy.ALL
        self._subs.append(await self.js.subscribe(sub.order_all, stream=sub.order_stream, cb=self._order_msg,
                                                  ordered_consumer=True, deliver_policy=policy, config=cfg,
                                                  idle_heartbeat=1.0, pending_msgs_limit=1_000_000))
        self._subs.append(await self.js.subscribe(sub.attest_all, stream=sub.attest_stream, cb=self._attest_msg,
                                                  ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                                                  idle_heartbeat=1.0, pending_msgs_limit=1_000_000))
        self._watch = asyncio.ensure_future(self._watch_identity())

    async def _watch_identity(self) -> None:
        """While running, notice the ordering stream being deleted and created again: a re-created
        stream starts again at sequence 1 and the consumer would carry on from the old position."""
        stream = self.subjects.order_stream
        while True:
            await asyncio.sleep(self.IDENTITY_CHECK_S)
            try:
                current = stream_identity(await self.js.stream_info(stream))
            except nats.js.errors.NotFoundError:
                current = "(no such stream)"
            except (*RETRYABLE, nats.js.errors.APIError):
                continue  # no answer now (an election, a reconnect): ask again later
            if current != self._pinned:
                self.on_fatal(OrderStreamReplaced(stream, str(self._pinned), current))
                return

    async def _close(self) -> None:
        watch = getattr(self, "_watch", None)
        if watch is not None:
            watch.cancel()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("NATS: %s", self.last_error)

    async def _on_disconnect(self) -> None:
        self.connected = False

    async def _on_reconnect(self) -> None:
        self.connected = True
        self.last_error = None
        self.on_reconnect()

    # ---------------------------------------------------------------- receiving

    async def _order_msg(self, msg: Any) -> None:
        seq, ts_ns = delivery_position(msg.reply)
        kind = "tx" if msg.subject == self.subjects.tx else "cut"
        self.on_order(seq, kind, ts_ns // 1_000_000, msg.data)

    async def _attest_msg(self, msg: Any) -> None:
        self.on_attestation(msg.data)

    # ---------------------------------------------------------------- publishing

    def publish_txs(self, raws: list[bytes]) -> Future:
        """Publish transactions (canonical bytes); the future holds, per transaction, ``None`` once
        the stream acknowledged it, or the ``OrderingUnavailable`` that stopped it."""
        return self._call(self._publish_all(raws))

    async def _publish_all(self, raws: list[bytes]) -> list[OrderingUnavailable | None]:
        sub = self.subjects
        return list(await asyncio.gather(*(self._publish(sub.tx, raw, content_id(raw), sub.order_stream)
                                           for raw in raws)))

    async def _publish(self, subject: str, data: bytes, msg_id: str, stream: str) -> OrderingUnavailable | None:
        """Publish until acknowledged, retrying with the same message id through elections."""
        deadline = self.loop.time() + self.publish_timeout_s
        delay = 0.05
        last = "no answer"
        while True:
            try:
                await self.js.publish(subject, data, timeout=2.0, stream=stream, headers={"Nats-Msg-Id": msg_id})
                return None
            except RETRYABLE as exc:
                last = type(exc).__name__
            except nats.js.errors.APIError as exc:  # e.g. 503 while the stream elects a leader
                if exc.code is not None and exc.code < 500 and exc.code != 408:
                    return OrderingUnavailable(f"the ordering stream refused it ({exc.description})")
                last = exc.description or f"error {exc.code}"
            if self.loop.time() + delay > deadline:
                return OrderingUnavailable(f"the ordering service did not confirm within {self.publish_timeout_s:g} s "
                                           f"({last}); sending the same transaction again is safe")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def publish_cut(self, after_seq: int) -> Future:
        """Ask for a block to end after ``after_seq`` (every node asking the same is stored once).
        The future holds ``None`` once the stream stored it, else the ``OrderingUnavailable``."""
        sub = self.subjects
        return self._call(self._publish(sub.cut, b"%d" % after_seq, f"cut-{after_seq}", sub.order_stream))

    def publish_attestation(self, data: bytes) -> Future:
        """Publish this node's attestation (Ed25519 is deterministic: a re-publish has the same bytes)."""
        sub = self.subjects
        return self._call(self._publish(sub.attest(self.settings.org), data, content_id(data), sub.attest_stream))


def stream_identity(info: Any) -> str:
    """What tells one incarnation of a stream from another of the same name: its creation time."""
    if info.created is None:
        raise RuntimeError(f"the NATS server did not report when stream {info.config.name} was created")
    return info.created.isoformat()
