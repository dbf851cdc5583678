"""The block committer: the one writer of a node's data folder.

It opens the folder (one node per folder), recovers at start (replaying blocks that ``state.db``
has not caught up with, checking every header, and refusing a block log that ends before what the
node committed), and then, called by an ordering protocol on the ordering's thread: re-checks a
transaction against the newest state (replay, authorisation), executes a block, appends it
durably with this node's attestation, makes its changes the newest state, and tells receipt
waiters and subscribers. It knows nothing of how blocks are ordered (``ordering``: solo or
JetStream) nor of quorums (``checkpoints``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Callable

import msgspec

from ..core.block import Genesis, Header, NodeSignature, Receipt, attest
from ..core.chain import BlockOutcome, make_block, make_genesis_block
from ..core.crypto import KeyPair
from ..core.errors import BlokautoError, ReplayedTx
from ..core.execute import SignerCache, authorise
from ..core.module import Context
from ..core.registry import Registry
from ..core.tx import CheckedTx
from ..modules.governance import GovernanceReader
from ..store.blocks import BlockLog
from ..store.damage import DamagedData
from ..store.head import HeadMarker
from ..store.state import StateStore, StoredReplayWindow
from .checkpoints import CheckpointService
from .faults import Divergence, HeadMarkerDamaged, IntegrityFault, LogBehindCommitted
from .folder_lock import FolderLock
from .integrity import checked_attestations
from .replay import stored_txs
from .scrub import known_node_keys

log = logging.getLogger("blokauto.engine")


@dataclass(frozen=True)
class TxResult:
    height: int
    index: int
    receipt: Receipt


@dataclass(frozen=True)
class CommittedBlock:
    header: Header
    tx_ids: list[bytes]
    receipts: list[Receipt]
    #: How long producing it took: execution, the durable append and applying its changes (0: not produced here).
    seconds: float = 0.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BlockCommitter:
    def __init__(self, data_dir: Path, registry: Registry, node_key: KeyPair, *, genesis: Genesis | None = None,
                 attests_every_block: bool = True, state_writer_process: bool = False) -> None:
        """``attests_every_block``: this node signs every block it commits if its key is a founding
        node key (solo ordering); a networked node attests by the consensus in force (its ordering
        sets ``attester``)."""
        self.data_dir = data_dir
        self.registry = registry
        self.node_key = node_key
        self._refuse_a_missing_log(data_dir)
        self._folder_lock = FolderLock(data_dir)  # one node per data folder, before anything is opened
        try:
            self._open(data_dir, registry, node_key, genesis, attests_every_block, state_writer_process)
        except BaseException:
            self._folder_lock.release()
            raise

    def _open(self, data_dir: Path, registry: Registry, node_key: KeyPair, genesis: Genesis | None,
              attests_every_block: bool, state_writer_process: bool) -> None:
        try:
            self.blocks = BlockLog(data_dir / "chain.db")
            stored = self.blocks.genesis()
        except sqlite3.DatabaseError as exc:
            raise IntegrityFault("the block log", "chain.db", f"SQLite cannot read it ({exc})", scope="block") from None
        if stored is None:
            if self.blocks.height() >= 0:
                raise IntegrityFault("the block log", "its meta table", "it holds blocks but no genesis document",
                                     scope="block", height=0)
            if genesis is None:
                raise FileNotFoundError(f"{data_dir} holds no chain; run `blokauto init` first")
            self.blocks.set_genesis(genesis)
            stored = genesis
        elif genesis is not None and genesis.hash() != stored.hash():
            raise ValueError("genesis.json does not match the chain stored in chain.db")
        self.genesis: Genesis = stored
        self.chain = stored.chain
        try:
            self.state = StateStore(data_dir / "state.db", registry, writer_process=state_writer_process)
        except sqlite3.DatabaseError as exc:
            self.blocks.close()
            raise DamagedData("state.db", str(data_dir / "state.db"), f"SQLite cannot read it ({exc})",
                              scope="state") from None
        self.checkpoints = CheckpointService(self.blocks)
        self.known_nodes: set[str] = set(stored.node_keys())  # every node key ever in force: attestations count
        #: A solo node whose key is a node key attests every block it commits: its attestation must be there.
        self.own_node: str | None = node_key.did if attests_every_block and node_key.did in stored.node_keys() else None
        #: This node's signature of a header it commits (None: it does not attest it).
        self.attester: Callable[[Header], NodeSignature | None] = lambda header: attest(header, node_key)
        self._consensus_history_read = False
        self.head_marker = HeadMarker(data_dir)
        self.recorded_head: Any = None  # head.json as found at start
        self.expect_head: Any = None  # a head committed before a repair: when re-formed, it must be identical
        self.window = StoredReplayWindow(self.state)
        self.governance = registry.provider(GovernanceReader)
        self.signers = SignerCache(registry.directory.watched)  # shared by pre-check and execution
        self.head: Header | None = None
        self.params: dict[str, int] = {}
        self._notify_lock = threading.Lock()
        self._waiters: dict[bytes, list[Future]] = {}
        self._listeners: list[Callable[[CommittedBlock], None]] = []
        self.committed_txs = 0

    @staticmethod
    def _refuse_a_missing_log(data_dir: Path) -> None:
        """A folder whose node committed blocks but has no chain.db lost its log: never start a new one."""
        if (data_dir / "chain.db").exists():
            return
        head = HeadMarker(data_dir)
        marker = head.read()
        if marker is not None:
            raise LogBehindCommitted(-1, marker.height, [head.path.name])

    # ---------------------------------------------------------------- recovery

    def recover(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Bring the state to the last durable block; returns how many blocks were replayed."""
        if self.head is not None:
            raise RuntimeError("the block committer recovered already")
        height = self.blocks.height()
        self._check_log_complete(height)
        if height < 0:
            self.commit(make_genesis_block(self.registry, self.genesis, self.state))
            self.state.start()
            return 0
        flushed = self.state.flushed_height
        if flushed >= 0:
            header = self.blocks.header(flushed)
            assert header is not None
            if header.state_root != self.state.root.hex():
                raise Divergence(flushed, header, msgspec.structs.replace(header, state_root=self.state.root.hex()))
            self.head = header
        replayed = 0
        for block in self.blocks.blocks(flushed + 1, height):
            if block.header.height == 0:
                outcome = make_genesis_block(self.registry, self.genesis, self.state)
            else:
                assert self.head is not None
                outcome = make_block(self.registry, self.state, self.window, prev=self.head,
                                     time=block.header.time, txs=stored_txs(self.registry.codec, block))
            if outcome.header != block.header:
                raise Divergence(block.header.height, block.header, outcome.header)
            self.state.apply(outcome)
            self.head = outcome.header
            replayed += 1
            if progress is not None:
                progress(replayed, height - flushed)
        self.state.start()
        if replayed:
            self.state.flush()  # queries and proofs read state.db: bring it to the head now
        assert self.head is not None
        self.window.rebuild(self.head.time)  # pre-checks before the next block see every consumed id
        self.params = self.registry.read_params(self.state)
        self._note_consensus()
        return replayed

    def _note_consensus(self) -> None:
        if not self._consensus_history_read:  # keys removed since: their attestations of older blocks count
            self.known_nodes |= known_node_keys(self.data_dir, self.blocks)
            self._consensus_history_read = True
        c = self.governance.consensus(self.state)
        if c is not None:
            self.known_nodes |= c.node_keys

    def _check_log_complete(self, height: int) -> None:
        """Refuse a block log that ends before what this node is known to have committed."""
        known: list[tuple[int, str]] = []
        if self.state.flushed_height > height:
            known.append((self.state.flushed_height, "state.db"))
        marker = self.recorded_head = self.head_marker.read()
        if marker is not None and marker.height > height:
            known.append((marker.height, self.head_marker.path.name))
        if known:
            raise LogBehindCommitted(height, max(h for h, _ in known), [w for _, w in known])
        gaps = self.blocks.gaps()
        if gaps:
            raise IntegrityFault("the block log", f"block {gaps[0]}",
                                 f"blocks are missing below the last block {height} (first missing: "
                                 f"{', '.join(map(str, gaps))})", scope="block", height=gaps[0])
        if marker is None and self.head_marker.unreadable:
            aside = self.head_marker.keep_damaged()
            log.warning("%s was kept as %s; it is written again at block %d", self.head_marker.path.name, aside.name,
                        height)
            return
        if marker is None:
            if height > 0:
                log.warning("%s is missing: this node cannot confirm that its block log holds every block it "
                            "committed (it is written again now, at block %d)", self.head_marker.path.name, height)
            return
        stored = self.blocks.header(marker.height)
        if stored is not None and stored.hash().hex() != marker.hash and self._attested_by_me(stored):
            # This node signed the stored block and never signs two blocks at one height: head.json changed.
            raise HeadMarkerDamaged(self.head_marker.path, marker.height, marker.hash)
        if stored is None or stored.hash().hex() != marker.hash:
            raise IntegrityFault("the block log", f"block {marker.height}",
                                 f"its header is not the one this node committed ({self.head_marker.path.name} "
                                 f"records hash {marker.hash})", scope="block", height=marker.height)

    def _attested_by_me(self, header: Header) -> bool:
        mine = [a for a in self.blocks.attestations(header.height) if a.node == self.node_key.did]
        return any(ok for _, ok in checked_attestations(mine, header.hash()))

    # ---------------------------------------------------------------- committing (the ordering's thread)

    def block_limit(self, configured: int) -> int:
        return min(configured, self.params.get("max_block_txs", configured))

    def check_stateful(self, checked: CheckedTx, seen: set[bytes] = frozenset()) -> BlokautoError | None:  # type: ignore[assignment]
        """What execution would refuse for replay or authorisation, against the newest state
        (``seen``: ids accepted for the block being formed)."""
        assert self.head is not None
        txid = checked.id
        if txid in seen:
            return ReplayedTx(tx_id=txid.hex(), height=self.head.height + 1)
        h = self.window.height_of(txid)
        if h is not None:
            return ReplayedTx(tx_id=txid.hex(), height=h)
        body = checked.tx.body
        spec = self.registry.messages[body.msg.__struct_config__.tag]
        ctx = Context(self.registry, self.chain, self.head.height + 1, self.head.time, txid, body.sender,
                      tuple(s.signer for s in checked.tx.sigs), self.params)
        try:
            authorise(self.registry, self.state, ctx, spec, checked, self.signers)
        except BlokautoError as err:
            return err
        return None

    def produce(self, txs: list[CheckedTx], *, time: int | None = None, stream_seq: int | None = None) -> BlockOutcome:
        """Execute and durably commit one block of ``txs``. Solo ordering stamps it with the clock;
        a networked ordering passes the time and stream position it agreed on."""
        assert self.head is not None
        started = perf_counter()
        t = max(self.head.time, now_ms() if time is None else time)
        try:
            outcome = make_block(self.registry, self.state, self.window, prev=self.head, time=t, txs=txs,  # type: ignore[arg-type]
                                 signer_cache=self.signers)
            self.commit(outcome, stream_seq, started=started)
        except BaseException:
            self.signers.clear()  # it may hold answers read from a block that was not committed
            raise
        return outcome

    def commit(self, outcome: BlockOutcome, stream_seq: int | None = None, *, started: float | None = None) -> None:
        """Append an executed block durably, make it the newest state and tell who waits (``started``:
        when ``produce`` began it, for the time its subscribers are told it took)."""
        expect = self.expect_head
        if expect is not None and outcome.header.height == expect.height:
            if outcome.header.hash().hex() != expect.hash:
                raise Divergence(expect.height, msgspec.structs.replace(outcome.header, state_root=expect.state_root),
                                 outcome.header)
            self.expect_head = None  # the repaired log reached the committed head, identical
        self.blocks.append(outcome, self.attester(outcome.header), stream_seq=stream_seq)
        self.head_marker.write(outcome.header)
        self.state.apply(outcome)
        self.head = outcome.header
        if outcome.writes or not self.params:
            self.params = self.registry.read_params(self.state)
        if self.governance.consensus_key in outcome.writes:
            self._note_consensus()
        self.committed_txs += len(outcome.tx_ids)
        self._notify(outcome, 0.0 if started is None else perf_counter() - started)

    def _notify(self, outcome: BlockOutcome, seconds: float) -> None:
        h = outcome.header.height
        with self._notify_lock:
            for i, txid in enumerate(outcome.tx_ids):
                waiters = self._waiters.pop(txid, None)
                if waiters:
                    result = TxResult(h, i, outcome.receipts[i])
                    for fut in waiters:
                        fut.set_result(result)
        event = CommittedBlock(outcome.header, outcome.tx_ids, outcome.receipts, seconds)
        for listener in list(self._listeners):
            listener(event)

    def subscribe(self, listener: Callable[[CommittedBlock], None]) -> Callable[[], None]:
        """Call ``listener`` with every block committed from now on (on the ordering's thread)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def close(self, *, healthy: bool = True) -> None:
        """Close the data folder: the head is recorded durably (if the node stopped healthy),
        chain.db is checkpointed out of its WAL, and the folder is free for another node."""
        try:
            if self.head is not None and healthy:
                self.head_marker.write(self.head, durable=True)
            self.state.close()
            self.blocks.close()
        finally:
            self._folder_lock.release()

    # ---------------------------------------------------------------- lookups (any thread)

    def locate(self, txid: bytes) -> tuple[int, int] | None:
        loc = self.state.pending_tx_location(txid)
        if loc is None:
            with self.state.snapshot() as snap:
                loc = snap.tx_location(txid)
        return loc

    def tx_result(self, txid: bytes) -> TxResult | None:
        loc = self.locate(txid)
        if loc is None:
            return None
        block = self.blocks.block(loc[0])
        if block is None:
            return None
        return TxResult(loc[0], loc[1], block.receipt(loc[1]))

    def receipt_future(self, txid: bytes) -> Future:
        """A future resolved with the ``TxResult`` once ``txid`` is in a committed block."""
        fut: Future = Future()
        with self._notify_lock:
            result = self.tx_result(txid)
            if result is not None:
                fut.set_result(result)
            else:
                self._waiters.setdefault(txid, []).append(fut)
        return fut

    def forget_waiter(self, txid: bytes, fut: Future) -> None:
        with self._notify_lock:
            waiters = self._waiters.get(txid)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[txid]
