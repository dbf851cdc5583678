"""JetStream ordering: the blocks of a networked node formed from the consortium's ordering stream.

Every node reads the same stream and applies the same rule, so all form identical blocks without
talking to each other:

- transactions accumulate in stream order;
- a block ends at a cut marker (if it has any transactions; an empty cut is ignored), or when it
  reaches the chain's ``max_block_txs`` parameter;
- its time is the stream timestamp of the message that ended it (never before the previous block);
- a message that fails the stateless checks (it can only come from a misbehaving publisher), has
  expired at the block time, or repeats a transaction already in this block or consumed before,
  is left out; everything else is executed, failures getting a failure receipt as on a solo node.

Cut markers are published by any node that has held transactions for ``block_interval_ms``
without seeing one; markers for the same position are stored once (their message id is the
position). A node asks again every ``CUT_RETRY_S`` while the block still waits (a request lost in
an outage would otherwise leave the block uncut until the next transaction).

After committing, a node publishes its signed attestation of the header, and publishes it again
(same bytes, same message id) until it has read it back from the attestation stream. Attestations from keys
that are not node keys of the consortium, or whose signature fails, are refused. When a quorum of
other nodes attests a different header at a height, this node stops executing and reports the
height and both state roots: its state has diverged from the consortium's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import CancelledError, Future
from typing import Any

import msgspec
import nats.errors

from ..core import crypto
from ..core.block import Header, NodeSignature, attest, attestation_bytes
from ..core.encoding import canonical
from ..core.errors import BlokautoError, Unavailable
from ..core.tx import CheckedTx
from .committer import BlockCommitter
from .jetstream import JetStreamLink, OrderingUnavailable
from .netconfig import NetworkSettings
from .consensus_log import record_change
from .faults import Divergence, StreamGap
from .ordering import Item, NodeConfig, Ordering, refuse_all
from .peers import PeerAttestations

log = logging.getLogger("blokauto.stream")


class Attestation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What a node publishes after committing a block: the header hash it signed and its state root."""

    height: int
    header: str
    state_root: str
    node: str
    sig: str


#: ``chain.db`` meta key holding the identity (creation time) of the ordering stream its blocks came from
ORDER_STREAM_PIN = "order_stream_created"


class JetStreamOrdering(Ordering):
    CUT_RETRY_S = 1.0  # ask for the cut again this long after the last request, while the block waits
    ATTEST_RETRY_S = 2.0  # publish an own attestation again if it was not read back from the stream by then
    ATTEST_TRACKED = 64  # own attestations of the newest heights watched that way
    EARLY_HEIGHTS = 10_000  # attestations kept for heights this node has not reached, at most this far ahead

    name = "jetstream"

    def __init__(self, committer: BlockCommitter, config: NodeConfig, *, settings: NetworkSettings,
                 verifier: Any) -> None:
        """``verifier``: the node's signature workers (a block's transactions are checked again as
        they come from the stream: a misbehaving publisher cannot put an unsigned one in)."""
        super().__init__(committer, config)
        self.settings = settings
        self.verifier = verifier
        committer.attester = self.own_attestation
        committer.state.on_flushed(self._state_flushed)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.link = JetStreamLink(settings, committer.chain, on_order=self._received_order,
                                  on_attestation=lambda data: self._queue.put(("attest", data)),
                                  on_reconnect=lambda: self._queue.put(("reconnected",)),
                                  on_fatal=lambda exc: self._queue.put(("fatal", exc)), data_dir=committer.data_dir)
        self.next_seq = 1
        self._block: list[tuple[int, bytes]] = []  # (stream seq, raw) of the block being formed
        self._block_since = 0.0
        self._cut_asked = 0
        self._cut_asked_at = 0.0
        self._cut_future: Future | None = None
        self._unseen: dict[int, list[Any]] = {}  # height -> [own attestation bytes, last sent, publish future]
        self.peer_attestations = PeerAttestations(
            committer.data_dir, peers=settings.peers, head=lambda: self.committer.head.height if self.committer.head is not None else -1,
            quorum=lambda: self.committer.checkpoints.quorum, deliver=lambda data: self._queue.put(("attest", data)),
            timeout_s=settings.quorum_wait_ms / 1000 + 5)
        self._early: dict[int, list[Attestation]] = {}
        self._conflicts: dict[int, dict[str, set[str]]] = {}
        self._consensus: tuple[frozenset[str], int] | None = None
        self.dropped = 0
        self.refused_attestations = 0
        self._queued = 0  # submitted transactions not yet pre-checked (changed by two threads)
        self._queued_lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle

    def recover(self, progress: Any = None) -> int:
        version = [self._consensus_version()]

        def replayed_one(done: int, total: int) -> None:  # record the consensus changes blocks re-execute
            v = self._consensus_version()
            if v != version[0] and self.committer.head is not None and self.committer.head.height > 0:
                record_change(self.committer.data_dir / "chain.db", self.committer.head.height, self.committer.state)
            version[0] = v
            if progress is not None:
                progress(done, total)

        replayed = self.committer.recover(replayed_one)
        self.next_seq = self.committer.blocks.stream_seq() + 1
        self._refresh_consensus()
        self.committer.checkpoints.set_policy(wait_s=self.settings.quorum_wait_ms / 1000)
        return replayed

    def start(self) -> None:
        pinned = self._meta(ORDER_STREAM_PIN)
        identity = self.link.start(self.next_seq, pinned=pinned)
        if pinned is None:
            self._set_meta(ORDER_STREAM_PIN, identity)
        genesis_block = self.committer.blocks.header(0)
        if genesis_block is not None:  # block 0 is never cut from the stream: attest it here (same bytes every start)
            self._publish_attestation(genesis_block)
        assert self.committer.head is not None
        now = time.monotonic()
        for h in range(max(1, self.committer.head.height - 9), self.committer.head.height + 1):  # sent before a crash? watch for them
            header = self.committer.blocks.header(h)
            if header is not None:
                self._track_attestation(header, now)
        super().start()
        self.peer_attestations.start()

    def _meta(self, key: str) -> str | None:
        """A value this node keeps in ``chain.db``'s meta table (beside the stream position)."""
        return self.committer.blocks.meta(key)

    def _set_meta(self, key: str, value: str) -> None:
        self.committer.blocks.set_meta(key, value)

    def stop(self) -> None:
        self.peer_attestations.stop()
        self.link.close()
        self._stopping = True
        self._queue.put(None)
        self.join()
        refuse_all(self._drain(), "the node is stopping")

    def _drain(self) -> list[Item]:
        items: list[Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is not None and item[0] == "submit":
                items += item[1]

    @property
    def pending(self) -> int:
        return self._queued + len(self._block)

    def enqueue(self, items: list[Item]) -> None:
        if self.refused_now(items):
            return
        with self._queued_lock:
            self._queued += len(items)
        self._queue.put(("submit", items))

    def halt(self, reason: BaseException) -> None:
        self._queue.put(("fatal", reason))

    def _state_flushed(self, height: int) -> None:
        self._queue.put(("flushed",))

    def _received_order(self, seq: int, kind: str, ts_ms: int, data: bytes) -> None:
        self._queue.put(("order", seq, kind, ts_ms, data))

    # ---------------------------------------------------------------- the loop

    def _loop(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            due = self._next_due()
            if due is not None and due <= now:
                self._retry(now)
                continue
            try:
                item = self._queue.get(timeout=None if due is None else due - now)
            except queue.Empty:
                continue
            if item is None:
                return
            kind = item[0]
            if kind == "order":
                self._order(*item[1:])
            elif kind == "submit":
                with self._queued_lock:
                    self._queued -= len(item[1])
                self._publish(item[1])
            elif kind == "attest":
                self._attestation(item[1])
            elif kind == "flushed":  # the state flusher is idle: hand it the blocks applied meanwhile
                self.committer.state.catch_up()
            elif kind == "reconnected":  # whatever failed during the outage: try again now
                self._cut_asked_at = 0.0
                for entry in self._unseen.values():
                    entry[1] = 0.0
            elif kind == "fatal":
                raise item[1]

    # ---------------------------------------------------------------- retried requests

    def _next_due(self) -> float | None:
        """When the next cut request or attestation re-publish is due (monotonic), if any."""
        due: list[float] = []
        if self._block:
            due.append(self._next_cut_due())
        if self._unseen:
            due.append(min(entry[1] for entry in self._unseen.values()) + self.ATTEST_RETRY_S)
        return min(due) if due else None

    def _retry(self, now: float) -> None:
        """Ask for the cut of the waiting block, and publish again own attestations not read back;
        a request still in flight (it retries by itself for up to 15 s) is left to finish."""
        if self._block and now >= self._next_cut_due():
            last = self._block[-1][0]
            if self._cut_asked != last or self._cut_future is None or self._cut_future.done():
                if self._cut_asked == last:
                    log.info("asking again for the cut after stream position %d: the block still waits", last)
                self._cut_asked = last
                self._cut_future = self.link.publish_cut(last)
            self._cut_asked_at = now
        for height, entry in list(self._unseen.items()):
            if now >= entry[1] + self.ATTEST_RETRY_S:
                entry[1] = now
                if entry[2] is None or entry[2].done():
                    log.info("publishing the attestation of block %d again: not read back from the stream yet", height)
                    entry[2] = self.link.publish_attestation(entry[0])

    def _next_cut_due(self) -> float:
        if self._cut_asked != self._block[-1][0]:
            return self._block_since + self.config.block_interval_ms / 1000
        return self._cut_asked_at + self.CUT_RETRY_S

    def _publish(self, items: list[Item]) -> None:
        """Check against the newest state, then hand to the stream; answer once it acknowledged."""
        to_send: list[Item] = []
        seen: set[bytes] = set()
        for checked, sub, i in items:
            err = self.committer.check_stateful(checked, seen)
            if err is not None:
                sub.answer(i, err)
            else:
                seen.add(checked.id)
                to_send.append((checked, sub, i))
        if not to_send:
            return

        def acknowledged(f: Any) -> None:
            try:
                results = f.result()
            except (nats.errors.Error, OSError, CancelledError) as exc:  # the link failed as a whole: retryable
                results = [OrderingUnavailable(f"the ordering service failed ({type(exc).__name__})")] * len(to_send)
            for (checked, sub, i), res in zip(to_send, results):
                sub.answer(i, checked.id if res is None else Unavailable(reason=str(res)))

        self.link.publish_txs([c.raw for c, _, _ in to_send]).add_done_callback(acknowledged)

    def _order(self, seq: int, kind: str, ts_ms: int, data: bytes) -> None:
        if seq < self.next_seq:
            return  # delivered again after a consumer reset
        if seq > self.next_seq:
            raise StreamGap(f"the ordering stream jumped from sequence {self.next_seq} to {seq}; "
                            f"messages were removed from the stream, so blocks cannot be formed safely")
        self.next_seq = seq + 1
        if kind == "tx":
            if not self._block:
                self._block_since = time.monotonic()
            self._block.append((seq, data))
            if len(self._block) >= self.committer.params["max_block_txs"]:
                self._cut(seq, ts_ms)
        elif self._block:
            self._cut(seq, ts_ms)

    def _cut(self, seq: int, ts_ms: int) -> None:
        raws = [raw for _, raw in self._block]
        self._block = []
        params = self.committer.params
        checked = self.verifier.check(raws, now_ms=None, max_bytes=params["max_tx_bytes"], max_ttl_ms=None).result()
        txs: list[CheckedTx] = []
        seen: set[bytes] = set()
        assert self.committer.head is not None
        block_time = max(self.committer.head.time, ts_ms)
        for result in checked:
            if isinstance(result, BlokautoError):
                self.dropped += 1
                log.warning("left out of the block: a stream message that fails the stateless checks (%s)", result)
                continue
            # expired first: the replay window answers only for unexpired ids the same way on every node
            if (result.tx.body.expires < block_time or result.id in seen
                    or self.committer.window.height_of(result.id) is not None):
                self.dropped += 1
                continue
            seen.add(result.id)
            txs.append(result)
        if not txs:
            return
        outcome = self.committer.produce(txs, time=ts_ms, stream_seq=seq)
        header = outcome.header
        # this block is attested, and others' attestations of it judged, by the node keys in force for it:
        # a change of the consensus record applies from the next block
        self._publish_attestation(header)
        for early in self._early.pop(header.height, []):
            self._admit(early, header)
        if outcome.writes:
            if self.committer.governance.consensus_key in outcome.writes:
                record_change(self.committer.data_dir / "chain.db", header.height, self.committer.state)
            self._refresh_consensus()

    # ---------------------------------------------------------------- attestations

    def _publish_attestation(self, header: Header) -> None:
        entry = self._track_attestation(header, time.monotonic())
        if entry is not None:
            entry[2] = self.link.publish_attestation(entry[0])

    def _track_attestation(self, header: Header, now: float) -> list[Any] | None:
        """Watch this node's attestation of ``header`` until it is read back from the stream."""
        own = self.own_attestation(header)
        if own is None:
            return None
        entry = [canonical(Attestation(header.height, header.hash().hex(), header.state_root, own.node, own.sig)),
                 now, None]
        self._unseen[header.height] = entry
        while len(self._unseen) > self.ATTEST_TRACKED:
            del self._unseen[min(self._unseen)]
        return entry

    def own_attestation(self, header: Header) -> NodeSignature | None:
        """This node's signature on ``header``, if its key is a node key of the consortium (a node
        that is not, e.g. an observer started from a snapshot, follows without attesting)."""
        nodes = self._consensus[0] if self._consensus is not None else frozenset(self.committer.genesis.node_keys())
        if self.committer.node_key.did not in nodes:
            return None
        return attest(header, self.committer.node_key)  # Ed25519 is deterministic: the same signature as stored

    def _consensus_version(self) -> int | None:
        c = self.committer.governance.consensus(self.committer.state)
        return None if c is None else c.version

    def _refresh_consensus(self) -> None:
        c = self.committer.governance.consensus(self.committer.state)
        if c is not None:
            self._consensus = (c.node_keys, c.quorum)
            self.committer.checkpoints.set_policy(quorum=c.quorum)

    def _attestation(self, data: bytes) -> None:
        try:
            att = msgspec.json.decode(data, type=Attestation)
            header_hash = bytes.fromhex(att.header)
            sig = bytes.fromhex(att.sig)
            key = crypto.public_key_from_did(att.node)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, crypto.InvalidKey):
            self.refused_attestations += 1
            log.warning("refused an attestation that cannot be read")
            return
        if not crypto.verify_signature(key, sig, attestation_bytes(header_hash)):
            self.refused_attestations += 1
            log.warning("refused an attestation of block %d by %s whose signature does not verify", att.height, att.node)
            return
        if att.node == self.committer.node_key.did:
            self._unseen.pop(att.height, None)  # on the stream: every node can read it
            return
        assert self.committer.head is not None
        if att.height > self.committer.head.height:  # judged once this node commits that height, with the keys then
            if att.height <= self.committer.head.height + self.EARLY_HEIGHTS:
                self._early.setdefault(att.height, []).append(att)
            return
        header = self.committer.blocks.header(att.height)
        if header is not None:
            self._admit(att, header)

    def _admit(self, att: Attestation, header: Header) -> None:
        """Judge a signed attestation of a committed height if its key is a node key of the consortium."""
        nodes = self._consensus[0] if self._consensus else frozenset()
        if att.node not in nodes:
            self.refused_attestations += 1
            log.warning("refused an attestation of block %d by %s, which is not a node key of the consortium",
                        att.height, att.node)
            return
        self._judge(att, header)

    def _judge(self, att: Attestation, header: Header) -> None:
        if att.header == header.hash().hex():
            self.committer.checkpoints.add(att.height, NodeSignature(att.node, att.sig))
            return
        log.error("node %s attests block %d with state root %s; this node committed state root %s",
                  att.node, att.height, att.state_root, header.state_root)
        others = self._conflicts.setdefault(att.height, {}).setdefault(att.header, set())
        others.add(att.node)
        quorum = self._consensus[1] if self._consensus else 1
        if len(others) >= quorum:
            raise Divergence(att.height, header, att, others)

    # ---------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        return {
            "ordering": self.name,
            "org": self.settings.org,
            "stream_seq": self.next_seq - 1,
            "nats_connected": self.link.connected,
            "nats_error": self.link.last_error,
            "dropped_messages": self.dropped,
            "refused_attestations": self.refused_attestations,
            "peer_attestations": self.peer_attestations.fetched,
            "quorum": self.committer.checkpoints.quorum,
        }
