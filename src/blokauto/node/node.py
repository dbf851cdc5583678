"""A blokauto node: its roles wired together, and the one door the HTTP API uses.

    raw tx bytes --(VerifierPool: worker processes decode, size, chain, expiry, signatures)-->
    Ordering (solo | JetStream: replay + authorisation against the newest state, durable, answered)
    --> BlockCommitter (execute, append to chain.db, apply to state, notify) --> CheckpointService

``submit`` answers each transaction with a future: its id once it is accepted for ordering, or
the refusal. ``receipt_future(id)`` then resolves when its block is committed. The API reads
through ``reader`` (blocks, proofs, queries), ``events`` (the event feed) and the few methods
below ``# the door``; it never reaches into the committer, the stores or the ordering.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import httpx

from ..core import smt
from ..core.block import Genesis
from ..core.crypto import KeyPair
from ..core.encoding import decode
from ..core.errors import BlokautoError, NotFound, Unavailable
from ..core.registry import Registry
from ..keystore import KeyStore
from ..modules import default_registry
from ..report.assemble import build_report
from ..store.damage import DamagedData
from ..store.head import HeadMarker
from ..verify import VerificationError
from .consensus_log import consensus_changes
from .committer import BlockCommitter, CommittedBlock, TxResult, now_ms
from .faults import Divergence, IntegrityFault, LogBehindCommitted
from .health import Health, Scrubber
from .integrity import verify_block
from .netconfig import load_network
from .ordering import NodeConfig, Ordering, Submission
from .reader import ChainReader
from .intake_pool import IntakePool
from .sample_store import SampleStore
from .solo import SoloOrdering
from .verifier import VerifierPool

log = logging.getLogger("blokauto.node")

GENESIS_FILE = "genesis.json"
#: Blocks at the head checked in full at every start (the rest is the scrubber's).
START_CHECK_BLOCKS = 8


def load_genesis(data_dir: Path) -> Genesis | None:
    path = data_dir / GENESIS_FILE
    return decode(path.read_bytes(), Genesis) if path.exists() else None


def damaged_file(data_dir: Path, exc: sqlite3.DatabaseError) -> DamagedData:
    """Which of the two databases SQLite could not read (a quick check of each), as damage."""
    from ..store.sqlite import connect

    for name, scope in (("state.db", "state"), ("chain.db", "block")):
        try:
            conn = connect(data_dir / name, durable=False, readonly=True)
            try:
                ok = conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            return DamagedData(name, str(data_dir / name), f"SQLite cannot read it ({exc})", scope=scope)  # type: ignore[arg-type]
    return DamagedData("the node's databases", str(data_dir), f"SQLite failed to read them ({exc})", scope="state")


def node_keys_of(data_dir: Path, genesis: Genesis) -> list[str]:
    """Names of the keys in DATA/keys that are node keys of this chain, in the order one is chosen."""
    nodes = genesis.node_keys()
    return [e.name for e in KeyStore(data_dir / "keys").entries() if e.kind == "node" and e.did in nodes]


def find_node_key(data_dir: Path, genesis: Genesis, name: str | None = None) -> KeyPair:
    """The node key to attest with: ``name`` if given, else the first node key of the chain in the keystore."""
    store = KeyStore(data_dir / "keys")
    if name:
        return store.load(name)
    nodes = genesis.node_keys()
    for entry in store.entries():
        if entry.kind == "node" and entry.did in nodes:
            return store.load(entry.name)
    for entry in store.entries():
        if entry.kind == "node":
            return store.load(entry.name)
    raise FileNotFoundError(f"no node key in {data_dir / 'keys'}; create one with `blokauto keys new NAME --node-key`")


class Node:
    def __init__(self, data_dir: Path, *, node_key: KeyPair | None = None, config: NodeConfig | None = None,
                 workers: int | None = None, registry: Registry | None = None, scrub_interval_s: float = 0.0) -> None:
        self.data_dir = Path(data_dir)
        self.registry = registry or default_registry()
        genesis = load_genesis(self.data_dir)
        if genesis is None:
            raise FileNotFoundError(f"{self.data_dir} holds no {GENESIS_FILE}; run `blokauto init --data {self.data_dir}` first")
        self._genesis = genesis
        self._key = node_key or find_node_key(self.data_dir, genesis)
        self.config = config or NodeConfig()
        self.network = load_network(self.data_dir)
        self.rebuilt_state: str | None = None
        self.repaired: str | None = None
        self.expect_head: Any = None  # the head committed before a repair, which must come back identical
        self._recorded_block_damage = Health.recorded_block_damage(self.data_dir)
        recorded = Health.recorded_state_damage(self.data_dir)
        if recorded is not None:
            self._set_state_aside(f"it was found damaged ({recorded['what']} at {recorded['where']}: "
                                  f"{recorded['reason']})")
        try:
            self.committer = self._open_committer()
        except DamagedData as exc:
            if exc.scope != "state" or self.rebuilt_state is not None:
                raise
            self._set_state_aside(str(exc))
            self.committer = self._open_committer()
        self.ordering: Ordering | None = None
        self.health = Health(self.data_dir)
        self.health.on_state_damage = lambda d: self._halt(
            IntegrityFault(d["what"], d["where"], d["reason"] + "; restart the node: it rebuilds state.db from its block log",
                           scope="state"))
        self.scrubber = Scrubber(self.data_dir, self.health, interval_s=scrub_interval_s)
        self.workers = workers
        self.verifier: VerifierPool | None = None
        self.reader: ChainReader | None = None
        self.samples: SampleStore | None = None  # telemetry samples kept off the ledger (opened by start)
        self.intake = IntakePool(workers)  # processes checking batches of samples (started on the first)
        self._inflight = 0
        self._lock = threading.Lock()
        self._refused: dict[str, int] = {}  # transactions refused before ordering, by code (for monitoring)

    def _open_committer(self) -> BlockCommitter:
        return BlockCommitter(self.data_dir, self.registry, self._key, genesis=self._genesis,
                              attests_every_block=self.network is None,
                              state_writer_process=self.config.state_writer_process)

    def _new_ordering(self) -> Ordering:
        if self.network is None:
            return SoloOrdering(self.committer, self.config)
        from .jetstream_ordering import JetStreamOrdering  # NATS is only imported by networked nodes
        return JetStreamOrdering(self.committer, self.config, settings=self.network, verifier=self.verifier)

    def _halt(self, reason: BaseException) -> None:
        if self.ordering is not None:
            self.ordering.halt(reason)

    def _set_state_aside(self, reason: str) -> None:
        """Move a damaged state.db aside (kept as evidence); the committer rebuilds it from the block log."""
        path = self.data_dir / "state.db"
        n = 1
        while (aside := path.with_name(f"state.db.damaged-{n}")).exists():
            n += 1
        if path.exists():
            os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name("state.db" + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        Health.clear_recorded_state_damage(self.data_dir)
        self.rebuilt_state = f"state.db was set aside as {aside.name} and rebuilt from the block log ({reason})"
        log.warning("%s", self.rebuilt_state)

    @property
    def chain(self) -> str:
        return self.committer.chain

    @property
    def node_did(self) -> str:
        return self.committer.node_key.did

    def start(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recover (checking the head of the log and the state; a damaged state.db is set aside and
        rebuilt; a networked node whose block log lost or damaged blocks repairs it from the
        stream or a peer), start the signature workers, the ordering and the scrubber. Returns
        blocks replayed."""
        self.verifier = VerifierPool(self.chain, self.registry, workers=self.workers)
        try:
            replayed = self._start_ordering(progress)
        except BaseException:
            self.verifier.close()
            raise
        self.scrubber.start()
        self.samples = SampleStore.open(self.data_dir)  # damage there never stops the node
        return replayed

    def _start_ordering(self, progress: Callable[[int, int], None] | None) -> int:
        self.ordering = self._new_ordering()
        try:
            replayed = self._recover(progress)
        except (Divergence, DamagedData, LogBehindCommitted) as exc:
            if self._state_damage(exc):
                self.committer.close(healthy=False)
                self._set_state_aside(str(exc))
            elif self.network is not None and self.repaired is None and not isinstance(exc, Divergence):
                self.committer.close(healthy=False)
                self._repair_networked_log(exc)
            else:
                raise
            self.committer = self._open_committer()
            self.ordering = self._new_ordering()
            replayed = self._recover(progress)
        c = self.committer
        if self.rebuilt_state is not None:
            self.health.forget_state_damage()
        for height in self._recorded_block_damage:  # damage found before a restart is still damage until repaired
            try:
                verify_block(c.blocks, height, c.known_nodes, c.own_node)
            except DamagedData as exc:
                self.health.note(exc)
        if self.expect_head is not None:
            c.expect_head = self.expect_head
        self.reader = ChainReader(self.registry, c.blocks, c.state, health=self.health,
                                  node_keys=lambda: c.known_nodes, own_node=c.own_node,
                                  attestations=c.checkpoints.attestations)
        self.ordering.start()
        return replayed

    def _recover(self, progress: Callable[[int, int], None] | None) -> int:
        """Recovery and the checks at start; SQLite failing to read a file is damage to that file."""
        assert self.ordering is not None
        try:
            replayed = self.ordering.recover(progress)
            self._check_at_start()
        except sqlite3.DatabaseError as exc:
            raise damaged_file(self.data_dir, exc) from None
        return replayed

    def _repair_networked_log(self, exc: Exception) -> None:
        """A networked node's block log lost blocks (re-form them from the stream) or holds a
        damaged one (rejoin from a peer's verified snapshot). The damaged files are kept aside;
        the block this node had committed last must come back identical, or it stops."""
        from .snapshot import fetch_snapshot

        committed = HeadMarker(self.data_dir).read()
        aside = self.data_dir / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}"
        aside.mkdir()
        names = ["state.db", "head.json"] + ([] if isinstance(exc, LogBehindCommitted) else ["chain.db"])
        for name in names:
            for suffix in ("", "-wal", "-shm"):
                p = self.data_dir / (name + suffix)
                if p.exists():
                    os.replace(p, aside / p.name)
        if isinstance(exc, LogBehindCommitted):
            self.repaired = (f"the block log had lost blocks {exc.log_height + 1}-{exc.committed}; state.db and "
                             f"head.json were set aside in {aside.name} and the blocks are formed again from the "
                             f"ordering stream")
        else:
            assert self.network is not None
            errors = []
            for peer in self.network.peers:
                try:
                    snap = fetch_snapshot(peer, self.data_dir)
                except (OSError, ConnectionError, VerificationError, httpx.HTTPError) as err:
                    errors.append(f"{peer}: {err}")
                    continue
                self.repaired = (f"the block log was damaged ({exc}); it was set aside in {aside.name} with state.db, "
                                 f"and a verified snapshot of {peer} to block {snap.height} replaced it")
                break
            else:
                for p in aside.iterdir():  # nothing better found: put everything back as it was
                    os.replace(p, self.data_dir / p.name)
                aside.rmdir()
                raise IntegrityFault("the block log", "this node's data folder",
                                     f"it is damaged ({exc}) and no peer served a snapshot that verifies "
                                     f"({'; '.join(errors) or 'no peers in network.json'})", scope="block") from exc
        log.warning("%s", self.repaired)
        self.expect_head = committed

    def _state_damage(self, exc: Exception) -> bool:
        """Whether a start failure lies in state.db (derived: rebuilt once) rather than the log."""
        if self.rebuilt_state is not None:
            return False
        if isinstance(exc, Divergence):  # the state root recorded in state.db is not the stored header's
            return exc.height == self.committer.state.flushed_height and exc.stored.state_root != exc.computed.state_root
        return isinstance(exc, DamagedData) and exc.scope == "state"

    def _check_at_start(self) -> None:
        """The cheap structural checks: the newest blocks in full, the state tree's root node."""
        e = self.committer
        assert e.head is not None
        top = e.head.height
        for h in range(max(0, top - START_CHECK_BLOCKS + 1), top + 1):
            verify_block(e.blocks, h, e.known_nodes, e.own_node)
        root_node = e.state.get_node("")
        root = smt.node_hash(root_node) if root_node is not None else smt.EMPTY_ROOT
        if root.hex() != e.head.state_root:
            raise IntegrityFault("state.db", "the state tree's root node", "it does not hash to the head's state root",
                                 scope="state")
        self._check_replay_window()

    def _check_replay_window(self) -> None:
        """Every transaction of the blocks whose ids may not have expired yet has its tx-index row:
        the replay check reads it, and a row missing would let a committed transaction in again."""
        e = self.committer
        assert e.head is not None
        cutoff = e.head.time - e.params.get("max_tx_ttl_ms", 0)
        h = e.head.height
        while h > 0:
            header = e.blocks.header(h)
            if header is None or header.time < cutoff:
                break
            ids = e.blocks.ids(h)
            missing = e.state.missing_tx_ids(ids) if ids else []
            if missing:
                raise IntegrityFault("the tx index", f"block {h}",
                                     f"it has no row for {len(missing)} of the block's transactions (first "
                                     f"{missing[0].hex()}), so the replay check could accept them again", scope="state")
            h -= 1

    def stop(self) -> None:
        self.scrubber.stop()
        if self.ordering is not None:
            self.ordering.stop()
        self.committer.close(healthy=self.ordering is not None and self.ordering.failure is None)
        if self.verifier is not None:
            self.verifier.close()
        self.intake.close()
        if self.samples is not None:
            self.samples.close()

    def __enter__(self) -> "Node":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- the door (what the API uses)

    @property
    def failure(self) -> BaseException | None:
        """Why the node stopped ordering (None while it runs)."""
        return None if self.ordering is None else self.ordering.failure

    @property
    def genesis(self) -> Genesis:
        return self.committer.genesis

    @property
    def params(self) -> dict[str, int]:
        return self.committer.params

    @property
    def head_height(self) -> int:
        head = self.committer.head
        return -1 if head is None else head.height

    @property
    def flushed_height(self) -> int:
        """The height queries and proofs read (state.db reaches a block shortly after its commit)."""
        return self.committer.state.flushed_height

    def on_flushed(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(height)`` each time queries can read a new height (from the flusher thread)."""
        self.committer.state.on_flushed(listener)

    def subscribe(self, listener: Callable[[CommittedBlock], None]) -> Callable[[], None]:
        """Call ``listener`` with every block committed from now on; returns the unsubscribe."""
        return self.committer.subscribe(listener)

    def receipt_future(self, txid: bytes) -> Future:
        """A future of the ``TxResult`` of ``txid``, resolved once its block is committed."""
        return self.committer.receipt_future(txid)

    def forget_receipt_future(self, txid: bytes, fut: Future) -> None:
        self.committer.forget_waiter(txid, fut)

    def tx(self, txid: bytes) -> dict[str, Any]:
        """A committed transaction with its receipt and proofs (``NotFound`` if it is not committed)."""
        assert self.reader is not None
        return self.reader.tx(txid, self.committer.locate(txid))

    def tx_result(self, txid: bytes) -> TxResult | None:
        return self.committer.tx_result(txid)

    def copy_chain_to(self, path: Path) -> None:
        """A consistent copy of the block log (for a joining node's snapshot), while blocks keep coming."""
        self.committer.blocks.backup_to(path)

    def consensus_changes(self, after: int) -> dict[str, Any]:
        """Node-key and quorum changes after ``after``, each with its proof and checkpoint."""
        assert self.reader is not None
        reader = self.reader

        def checkpoint_of(height: int) -> Any:
            try:
                return reader.checkpoint(height)
            except NotFound:
                return None

        return consensus_changes(checkpoint_of, self.data_dir / "chain.db", after)

    def report(self, vin: str, *, with_claims: bool = False) -> dict[str, Any]:
        """A vehicle's verifiable history report (blokauto-report/1) at the flushed height (with its
        proven insurance claims if ``with_claims``: the caller checked its holder lets it)."""
        assert self.reader is not None
        self.health.check_state()
        return build_report(self.committer.blocks, self.committer.state, vin, self.reader.checkpoint,
                            with_claims=with_claims)

    def submit(self, raws: list[bytes]) -> Submission:
        """Check and queue transactions. ``submission.future`` resolves to a list with, per input,
        its id (accepted for ordering) or the ``BlokautoError`` refusing it."""
        ordering = self.ordering
        self.health.check_state()  # what the pre-check reads (replay window, roles) must be intact
        if ordering is None or ordering.failure is not None:
            raise Unavailable(reason="the engine stopped after an error; see the node log")
        with self._lock:
            if self._inflight + ordering.pending + len(raws) > self.config.max_pending:
                raise Unavailable(reason=f"{self._inflight + ordering.pending} transactions are waiting")
            self._inflight += len(raws)
        assert self.verifier is not None
        params = self.committer.params
        sub = Submission(len(raws))
        sub.future.add_done_callback(self._count_refused)
        verified = self.verifier.check(raws, now_ms=now_ms(), max_bytes=params["max_tx_bytes"],
                                       max_ttl_ms=params["max_tx_ttl_ms"])

        def on_verified(f: Future) -> None:
            with self._lock:
                self._inflight -= len(raws)
            items = []
            for i, result in enumerate(f.result()):
                if isinstance(result, BlokautoError):
                    sub.answer(i, result)
                else:
                    items.append((result, sub, i))
            if items:
                ordering.enqueue(items)

        verified.add_done_callback(on_verified)
        return sub

    def _count_refused(self, f: Future) -> None:
        for r in f.result():
            if r.__class__ is not bytes:
                with self._lock:
                    self._refused[r.code] = self._refused.get(r.code, 0) + 1

    def submit_one(self, raw: bytes) -> Future:
        """A future of one transaction's id (or its refusal, raised)."""
        out: Future = Future()

        def done(f: Future) -> None:
            r = f.result()[0]
            out.set_exception(r) if isinstance(r, BaseException) else out.set_result(r)

        self.submit([raw]).future.add_done_callback(done)
        return out

    def status(self) -> dict[str, Any]:
        c = self.committer
        head = c.head
        failure = self.failure
        pending = self.ordering.pending if self.ordering is not None else 0
        recovered = getattr(self.ordering, "recovered_from_journal", 0)
        return {
            "chain": c.chain,
            "node": self.node_did,
            "height": head.height if head else -1,
            "head": head.hash().hex() if head else None,
            "time": head.time if head else None,
            "state_root": head.state_root if head else None,
            "flushed_height": c.state.flushed_height,
            "pending": pending + self._inflight,
            "committed_txs": c.committed_txs,
            "workers": self.verifier.workers if self.verifier else 0,
            "healthy": failure is None and self.health.ok,
            "error": None if failure is None else str(failure),
            "integrity": {**self.health.status(), "rebuilt_state": self.rebuilt_state, "repaired": self.repaired,
                          "recovered_from_journal": recovered},
            **(self.ordering.status() if self.ordering is not None else {"ordering": "solo" if self.network is None else "jetstream"}),
        }

    #: Heights below the head searched for the newest one a quorum attested (a lag beyond shows as this).
    QUORUM_LAG_SEARCHED = 10_000

    def monitoring(self) -> dict[str, Any]:
        """What ``/metrics`` reads beside ``status()``, cheap enough for every scrape: transactions in
        the signature checks (and how long the oldest has waited), waiting to be ordered, refused
        before ordering (by code), the newest block a quorum attested (None: unreadable), and why the engine stopped."""
        verifying, oldest = self.verifier.backlog() if self.verifier is not None else (0, 0.0)
        c = self.committer
        head = c.head.height if c.head is not None else -1
        quorum = c.checkpoints.quorum
        try:
            attested = c.blocks.highest_attested(quorum, max(-1, head - self.QUORUM_LAG_SEARCHED))
        except sqlite3.Error:  # the block log cannot be read: the node's own checks report it
            attested = None
        with self._lock:
            refused = dict(self._refused)
        return {
            "verifying": verifying,
            "verifying_oldest_s": oldest,
            "ordering_pending": self.ordering.pending if self.ordering is not None else 0,
            "refused": refused,
            "quorum": quorum,
            "quorum_height": attested,
            "failure": None if self.failure is None else type(self.failure).__name__,
        }


#: Allocations between young-generation collections while serving (CPython's default is 700).
GC_YOUNG_THRESHOLD = 100_000


def tune_gc_for_serving() -> None:
    """Collect garbage cycles less often once a node serves: freeze what start-up built (the
    registry, caches, recovery's objects) so full collections no longer walk it, and let the
    young generation grow to ``GC_YOUNG_THRESHOLD`` allocations. Every transaction allocates a few
    hundred container objects and almost none form cycles; with the defaults the collector ran
    every few transactions and cost a quarter of the node's interpreter time (``bench throughput``:
    node main-process CPU 102–115 µs per transaction with the defaults, 75–81 µs with this)."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 1000)
