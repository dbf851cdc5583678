"""A blokauto node: data folder, engine, signature workers, and the submission path.

    raw tx bytes --(worker processes: decode, size, chain, expiry, signatures)-->
    engine inbox --(replay + authorisation against the newest state)--> block --> chain.db

``submit`` answers each transaction with a future: its id once it is accepted for ordering, or
the refusal. ``engine.receipt_future(id)`` then resolves when its block is committed.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from ..core.block import Genesis
from ..core.crypto import KeyPair
from ..core.encoding import decode
from ..core.errors import BlokautoError, Unavailable
from ..core.registry import Registry
from ..keystore import KeyStore
from ..modules import default_registry
from .engine import Engine, EngineConfig, Submission, now_ms
from .netconfig import load_network
from .verifier import VerifierPool

GENESIS_FILE = "genesis.json"


def load_genesis(data_dir: Path) -> Genesis | None:
    path = data_dir / GENESIS_FILE
    return decode(path.read_bytes(), Genesis) if path.exists() else None


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
    raise FileNotFoundError(f"no node key in {data_dir / 'keys'}; create one with `blokauto keys new NAME --node`")


class Node:
    def __init__(self, data_dir: Path, *, node_key: KeyPair | None = None, config: EngineConfig | None = None,
                 workers: int | None = None, registry: Registry | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.registry = registry or default_registry()
        genesis = load_genesis(self.data_dir)
        if genesis is None:
            raise FileNotFoundError(f"{self.data_dir} holds no {GENESIS_FILE}; run `blokauto init --data {self.data_dir}` first")
        key = node_key or find_node_key(self.data_dir, genesis)
        self.network = load_network(self.data_dir)
        if self.network is None:
            self.engine = Engine(self.data_dir, self.registry, key, config, genesis=genesis)
        else:
            from .stream_engine import StreamEngine  # NATS is only imported by networked nodes
            self.engine = StreamEngine(self.data_dir, self.registry, key, config, genesis=genesis,
                                       settings=self.network)
        self.workers = workers
        self.verifier: VerifierPool | None = None
        self._inflight = 0
        self._lock = threading.Lock()

    @property
    def chain(self) -> str:
        return self.engine.chain

    @property
    def node_did(self) -> str:
        return self.engine.node_key.did

    def start(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recover, start the signature workers and the engine. Returns blocks replayed."""
        replayed = self.engine.recover(progress)
        self.verifier = VerifierPool(self.chain, self.registry, workers=self.workers)
        self.engine.verifier = self.verifier
        try:
            self.engine.start()
        except BaseException:
            self.verifier.close()
            raise
        return replayed

    def stop(self) -> None:
        self.engine.stop()
        if self.verifier is not None:
            self.verifier.close()

    def __enter__(self) -> "Node":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def submit(self, raws: list[bytes]) -> Submission:
        """Check and queue transactions. ``submission.future`` resolves to a list with, per input,
        its id (accepted for ordering) or the ``BlokautoError`` refusing it."""
        engine = self.engine
        if engine.failure is not None:
            raise Unavailable(reason="the engine stopped after an error; see the node log")
        with self._lock:
            if self._inflight + engine.pending + len(raws) > engine.config.max_pending:
                raise Unavailable(reason=f"{self._inflight + engine.pending} transactions are waiting")
            self._inflight += len(raws)
        assert self.verifier is not None
        params = engine.params
        sub = Submission(len(raws))
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
                engine.enqueue(items)

        verified.add_done_callback(on_verified)
        return sub

    def submit_one(self, raw: bytes) -> Future:
        """A future of one transaction's id (or its refusal, raised)."""
        out: Future = Future()

        def done(f: Future) -> None:
            r = f.result()[0]
            out.set_exception(r) if isinstance(r, BaseException) else out.set_result(r)

        self.submit([raw]).future.add_done_callback(done)
        return out

    def status(self) -> dict[str, Any]:
        e = self.engine
        head = e.head
        return {
            "chain": e.chain,
            "node": self.node_did,
            "height": head.height if head else -1,
            "head": head.hash().hex() if head else None,
            "time": head.time if head else None,
            "state_root": head.state_root if head else None,
            "flushed_height": e.state.flushed_height,
            "pending": e.pending + self._inflight,
            "committed_txs": e.committed_txs,
            "workers": self.verifier.workers if self.verifier else 0,
            "healthy": e.failure is None,
            "error": None if e.failure is None else str(e.failure),
            **e.ordering_status(),
        }

