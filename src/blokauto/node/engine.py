"""The engine: one thread that owns the chain.

It recovers at start (replaying blocks that ``state.db`` has not caught up with, checking every
header, and refusing a block log that ends before what the node committed), then loops: take
ordered transactions, re-check replay and authorisation against the newest state, execute,
append the block durably with this node's attestation, make its changes the newest state, and
tell waiters and subscribers. Solo ordering (cut a block at ``block_max_txs`` transactions or
``block_interval_ms`` after the first one arrived) is the default: it answers an id only once
the transaction is in the fsynced intake journal, and orders again at start whatever the journal
holds that no block does. A networked ordering feeds the same loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core.block import Genesis, Header, NodeSignature, Receipt, attest
from ..core.chain import BlockOutcome, make_block, make_genesis_block
from ..core.crypto import KeyPair
from ..core.errors import BlokautoError, ReplayedTx, Unavailable
from ..core.execute import SignerCache, authorise
from ..core.module import Context
from ..core.registry import Registry
from ..core.tx import CheckedTx, check_stateless
from ..modules.governance.state import CONSENSUS
from ..store.blocks import BlockLog
from ..store.head import HeadMarker
from ..store.state import StateStore, StoredReplayWindow
from ..store.damage import DamagedData
from .faults import Divergence, HeadMarkerDamaged, IntegrityFault, LogBehindCommitted, NodeFault
from .folder_lock import FolderLock
from .integrity import checked_attestations
from .journal import IntakeJournal, JournalWriter
from .replay import stored_txs
from .scrub import known_node_keys

log = logging.getLogger("blokauto.engine")


class Submission:
    """The answers to one batch of submitted transactions: per input, its id once accepted for
    ordering, or the ``BlokautoError`` refusing it. ``future`` resolves when all are known."""

    __slots__ = ("results", "future", "_remaining", "_lock")

    def __init__(self, size: int) -> None:
        self.results: list[bytes | BlokautoError | None] = [None] * size
        self.future: Future[list[bytes | BlokautoError]] = Future()
        self._remaining = size
        self._lock = threading.Lock()
        if size == 0:
            self.future.set_result([])

    def answer(self, index: int, value: bytes | BlokautoError) -> None:
        self.results[index] = value
        with self._lock:
            self._remaining -= 1
            done = self._remaining == 0
        if done:
            self.future.set_result(self.results)  # type: ignore[arg-type]


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


@dataclass
class EngineConfig:
    block_max_txs: int = 2_000
    block_interval_ms: int = 50
    max_pending: int = 100_000
    #: False only to measure what the journal costs (``bench throughput``): ids are then answered
    #: before they are durable, and a crash can lose acknowledged transactions.
    durable_acks: bool = True
    #: Write state layers in a process of their own (a node; in-process engines write in a thread).
    state_writer_process: bool = False


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Engine:
    #: Solo ordering answers ids after the intake journal's fsync; a networked ordering after the stream's.
    intake_journal = True

    def __init__(self, data_dir: Path, registry: Registry, node_key: KeyPair, config: EngineConfig | None = None,
                 *, genesis: Genesis | None = None) -> None:
        self.data_dir = data_dir
        self.registry = registry
        self.node_key = node_key
        self.config = config or EngineConfig()
        self._refuse_a_missing_log(data_dir)
        self._folder_lock = FolderLock(data_dir)  # one node per data folder, before anything is opened
        try:
            self._open(data_dir, registry, node_key, genesis)
        except BaseException:
            self._folder_lock.release()
            raise

    def _open(self, data_dir: Path, registry: Registry, node_key: KeyPair, genesis: Genesis | None) -> None:
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
            self.state = StateStore(data_dir / "state.db", registry,
                                    writer_process=self.config.state_writer_process)
        except sqlite3.DatabaseError as exc:
            self.blocks.close()
            raise DamagedData("state.db", str(data_dir / "state.db"), f"SQLite cannot read it ({exc})",
                              scope="state") from None
        self.state.on_flushed(self._state_flushed)
        self.known_nodes: set[str] = set(stored.node_keys())  # every node key ever in force: attestations count
        #: A solo node whose key is a node key attests every block it commits: its attestation must be there.
        self.own_node: str | None = node_key.did if self.intake_journal and node_key.did in stored.node_keys() else None
        self._consensus_history_read = False
        self.head_marker = HeadMarker(data_dir)
        self.journal = IntakeJournal(data_dir) if self.intake_journal else None
        self._journal_writer: JournalWriter | None = None
        self.recovered_from_journal = 0
        self._recorded: Any = None  # head.json as found at start
        self.expect_head: Any = None  # a head committed before a repair: when re-formed, it must be identical
        self.window = StoredReplayWindow(self.state)
        self.signers = SignerCache(registry.directory.watched)  # shared by pre-check and execution
        self.head: Header | None = None
        self.params: dict[str, int] = {}
        self._inbox: deque[tuple[CheckedTx, Submission, int]] = deque()
        self._inbox_cond = threading.Condition()
        self._flush_done = False  # the state flusher finished a layer: hand it what waits (engine thread)
        self._notify_lock = threading.Lock()
        self._waiters: dict[bytes, list[Future]] = {}
        self._listeners: list[Callable[[CommittedBlock], None]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failure: BaseException | None = None
        self._halt: BaseException | None = None
        self.started_at = time.monotonic()
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
        height = self.blocks.height()
        self._check_log_complete(height)
        if height < 0:
            self._commit(make_genesis_block(self.registry, self.genesis, self.state))
            self.state.start()
            self._recover_intake()
            return 0
        flushed = self.state.flushed_height
        if flushed >= 0:
            header = self.blocks.header(flushed)
            assert header is not None
            if header.state_root != self.state.root.hex():
                raise Divergence(flushed, header, msgspec.structs.replace(header, state_root=self.state.root.hex()))
            self.head = header
        replayed = 0
        start = flushed + 1
        for block in self.blocks.blocks(start, height):
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
        self._recover_intake()
        return replayed

    def _note_consensus(self) -> None:
        if not self._consensus_history_read:  # keys removed since: their attestations of older blocks count
            self.known_nodes |= known_node_keys(self.data_dir, self.blocks)
            self._consensus_history_read = True
        c = CONSENSUS.get(self.state)
        if c is not None:
            self.known_nodes |= {n.did for n in c.nodes}

    def _check_log_complete(self, height: int) -> None:
        """Refuse a block log that ends before what this node is known to have committed."""
        known: list[tuple[int, str]] = []
        if self.state.flushed_height > height:
            known.append((self.state.flushed_height, "state.db"))
        marker = self._recorded = self.head_marker.read()
        if marker is not None and marker.height > height:
            known.append((marker.height, self.head_marker.path.name))
        if known:
            raise LogBehindCommitted(height, max(h for h, _ in known), [w for _, w in known])
        gaps = self.blocks.gaps()
        if gaps:
            raise IntegrityFault("the block log", f"block {gaps[0]}",
                                 f"blocks are missing below the last block {height} (first missing: "
                                 f"{', '.join(map(str, gaps))})", scope="block", height=gaps[0])
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

    def _recover_intake(self) -> None:
        """Order whatever the intake journal holds that no committed block does (solo ordering)."""
        if self.journal is None:
            return
        recorded = self._recorded
        contents = self.journal.read(answered=recorded.journal if recorded is not None else None)
        assert self.head is not None
        self.head_marker.write(self.head)  # the head as of now, before the journal's state is recorded with it
        self.journal.on_durable = lambda state: self.head_marker.write(journal=state)
        self.journal.open()
        params = self.params or self.registry.read_params(self.state)
        pending: list[CheckedTx] = []
        seen: set[bytes] = set()
        for raw in contents.txs:
            try:
                checked = check_stateless(raw, self.registry.codec, chain=self.chain, max_bytes=1 << 30)
            except BlokautoError as err:  # it passed these checks before it was journaled: the file was changed
                log.warning("the intake journal holds a transaction that fails the stateless checks (%s); "
                            "left out", err.message)
                continue
            if checked.id in seen or self.locate(checked.id) is not None:
                continue
            seen.add(checked.id)
            pending.append(checked)
        limit = min(self.config.block_max_txs, params.get("max_block_txs", self.config.block_max_txs))
        for i in range(0, len(pending), limit):
            self.produce(pending[i:i + limit])
        self.recovered_from_journal = len(pending)
        if pending:
            log.info("ordered %d acknowledged transactions from the intake journal that no block held yet",
                     len(pending))
        self.journal.clear()

    # ---------------------------------------------------------------- running

    def start(self) -> None:
        if self.journal is not None:
            self._journal_writer = JournalWriter(self.journal)
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._inbox_cond:
            self._stopping = True
            self._inbox_cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        for _, sub, i in self._inbox:
            sub.answer(i, Unavailable(reason="the node is stopping"))
        self._inbox.clear()
        if self._journal_writer is not None:
            self._journal_writer.close()  # every group asked for is written (and answered) first
        if self.journal is not None:
            if self.failure is None and self.journal.state[1]:  # every journaled transaction is in a block now
                self.journal.clear()
            self.journal.close()
        try:
            if self.head is not None and self.failure is None:
                self.head_marker.write(self.head, durable=True)
            self.state.close()
            self.blocks.close()
        finally:
            self._folder_lock.release()

    @property
    def pending(self) -> int:
        return len(self._inbox)

    def enqueue(self, items: list[tuple[CheckedTx, Submission, int]]) -> None:
        with self._inbox_cond:
            if self._stopping or self.failure is not None:
                for _, sub, i in items:
                    sub.answer(i, Unavailable(reason="the node is stopping" if self._stopping else "the engine stopped"))
                return
            self._inbox.extend(items)
            self._inbox_cond.notify()

    def subscribe(self, listener: Callable[[CommittedBlock], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _block_limit(self) -> int:
        return min(self.config.block_max_txs, self.params.get("max_block_txs", self.config.block_max_txs))

    def _state_flushed(self, height: int) -> None:
        """The state flusher wrote a layer (flusher thread): wake the engine to hand it the next."""
        with self._inbox_cond:
            self._flush_done = True
            self._inbox_cond.notify()

    def _catch_up_state(self) -> None:
        if self._flush_done:
            self._flush_done = False
            self.state.catch_up()

    def _take_arrived(self, deadline: float | None) -> list[tuple[CheckedTx, Submission, int]]:
        """What arrived in the inbox, waiting for something (or until ``deadline``, if a block is open)."""
        with self._inbox_cond:
            while not self._inbox and not self._stopping and self._halt is None and not self._flush_done:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._inbox_cond.wait(left)
            items = list(self._inbox)
            self._inbox.clear()
            return items

    def _loop(self) -> None:
        """Solo ordering: transactions are checked, journaled and answered as they arrive (so an id
        is answered as soon as it is durable, whatever the block window), and a block is cut from
        what was accepted at ``block_max_txs`` or ``block_interval_ms`` after its first one."""
        interval = self.config.block_interval_ms / 1000
        accepted: list[tuple[CheckedTx, Submission, int]] = []
        seen: set[bytes] = set()
        deadline: float | None = None
        while not self._stopping:
            if self._halt is not None:
                raise self._halt
            arrived = self._take_arrived(deadline)
            self._catch_up_state()
            if arrived:
                new = self._precheck(arrived, seen)
                if new:
                    self._journal(new)
                    accepted += new
                    if deadline is None:
                        deadline = time.monotonic() + interval
            limit = self._block_limit()
            while accepted and (len(accepted) >= limit or time.monotonic() >= deadline or self._stopping):
                block, accepted = accepted[:limit], accepted[limit:]
                self.produce([checked for checked, _, _ in block])
                seen.difference_update(checked.id for checked, _, _ in block)
                assert self._journal_writer is not None
                self._journal_writer.committed()
                deadline = time.monotonic() + interval if accepted else None

    def halt(self, reason: BaseException) -> None:
        """Stop ordering and executing (the engine fails with ``reason``): the node's own data can no
        longer be trusted to decide what a new block does."""
        self._halt = reason
        with self._inbox_cond:
            self._inbox_cond.notify_all()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the engine must never die silently
            self.failure = exc
            if isinstance(exc, (NodeFault, DamagedData)):  # a finding about its data: the message says it all
                log.error("engine stopped: %s", exc)
            else:
                log.exception("engine stopped")
            with self._inbox_cond:
                items = list(self._inbox)
                self._inbox.clear()
            for _, sub, i in items:
                sub.answer(i, Unavailable(reason="the engine stopped"))

    def _precheck(self, batch: list[tuple[CheckedTx, Submission, int]],
                  seen: set[bytes]) -> list[tuple[CheckedTx, Submission, int]]:
        """Refuse, before ordering, what execution would refuse for replay or authorisation (``seen``:
        ids accepted for the block being formed, updated)."""
        assert self.head is not None
        accepted: list[tuple[CheckedTx, Submission, int]] = []
        for item in batch:
            checked, sub, i = item
            err = self.check_stateful(checked, seen)
            if err is not None:
                sub.answer(i, err)
                continue
            seen.add(checked.id)
            accepted.append(item)
        return accepted

    def _journal(self, accepted: list[tuple[CheckedTx, Submission, int]]) -> None:
        """Make accepted transactions durable (one fsync for the group, while their block executes),
        then answer their ids. If the journal cannot be written, the transactions are answered
        ``unavailable`` (not acknowledged; sending them again is safe: a repeat that was included
        anyway is refused as a replay naming its block)."""

        def durable(err: OSError | None) -> None:
            for checked, sub, i in accepted:
                sub.answer(i, checked.id if err is None else
                           Unavailable(reason=f"the node cannot write its intake journal ({err.strerror})"))

        if not self.config.durable_acks:
            durable(None)
            return
        assert self._journal_writer is not None
        self._journal_writer.append([checked.raw for checked, _, _ in accepted], durable)

    def check_stateful(self, checked: CheckedTx, seen: set[bytes] = frozenset()) -> BlokautoError | None:  # type: ignore[assignment]
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
        """Execute and durably commit one block of ``txs`` (engine thread). Solo ordering stamps it
        with the clock; a networked ordering passes the time and stream position it agreed on."""
        assert self.head is not None
        t = max(self.head.time, now_ms() if time is None else time)
        try:
            outcome = make_block(self.registry, self.state, self.window, prev=self.head, time=t, txs=txs,  # type: ignore[arg-type]
                                 signer_cache=self.signers)
            self._commit(outcome, stream_seq)
        except BaseException:
            self.signers.clear()  # it may hold answers read from a block that was not committed
            raise
        return outcome

    def own_attestation(self, header: Header) -> NodeSignature | None:
        return attest(header, self.node_key)

    def _commit(self, outcome: BlockOutcome, stream_seq: int | None = None) -> None:
        expect = self.expect_head
        if expect is not None and outcome.header.height == expect.height:
            if outcome.header.hash().hex() != expect.hash:
                raise Divergence(expect.height, msgspec.structs.replace(outcome.header, state_root=expect.state_root),
                                 outcome.header)
            self.expect_head = None  # the repaired log reached the committed head, identical
        self.blocks.append(outcome, self.own_attestation(outcome.header), stream_seq=stream_seq)
        self.head_marker.write(outcome.header)
        self.state.apply(outcome)
        self.head = outcome.header
        if outcome.writes or not self.params:
            self.params = self.registry.read_params(self.state)
        if CONSENSUS.key in outcome.writes:
            self._note_consensus()
        self.committed_txs += len(outcome.tx_ids)
        self._notify(outcome)

    def _notify(self, outcome: BlockOutcome) -> None:
        h = outcome.header.height
        with self._notify_lock:
            for i, txid in enumerate(outcome.tx_ids):
                waiters = self._waiters.pop(txid, None)
                if waiters:
                    result = TxResult(h, i, outcome.receipts[i])
                    for fut in waiters:
                        fut.set_result(result)
        event = CommittedBlock(outcome.header, outcome.tx_ids, outcome.receipts)
        for listener in list(self._listeners):
            listener(event)

    def ordering_status(self) -> dict[str, object]:
        return {"ordering": "solo"}

    # ---------------------------------------------------------------- lookups

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
