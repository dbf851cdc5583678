"""From ordered transactions to a complete block: execute, update the state tree, make the header.

``make_block`` is the whole deterministic step a node takes per block; storage and networking
live above it. ``MemoryLedger`` keeps everything in dicts: the in-memory chain used by property
tests and simulations (the same code path as the node, with no disk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from . import merkle, smt
from .block import Genesis, Header, Receipt
from .encoding import canonical
from .execute import BlockTx, RefusedTx, ReplayWindow, Window, execute_block
from .module import IndexTable
from .registry import Registry
from .state import Overlay, StateReader


class LedgerReader(StateReader, Protocol):
    def get_node(self, path: str) -> smt.Node | None: ...


@dataclass
class BlockOutcome:
    """Everything a block changes; a store commits it atomically."""

    header: Header
    txs: list[bytes]  # canonical signed transactions, in order
    tx_ids: list[bytes]
    receipts: list[Receipt]
    receipt_bytes: list[bytes]
    writes: dict[bytes, bytes | None]
    node_writes: dict[str, smt.Node | None]
    index_ops: list[tuple[IndexTable, bool, dict[str, Any], int]]
    accepted: list[tuple[bytes, int, int]] = field(default_factory=list)  # (id, expires, index) in the replay window

    @property
    def hash(self) -> bytes:
        return self.header.hash()


def state_changes(writes: dict[bytes, bytes | None]) -> dict[bytes, bytes | None]:
    """State writes as tree changes: key hash -> value hash (None deletes)."""
    return {smt.key_hash(k): (None if v is None else smt.value_hash(v)) for k, v in writes.items()}


def merge_tx_index(index: dict[bytes, tuple[bytes, int, int, int]], outcome: BlockOutcome) -> None:
    """Add a block to a tx index (id -> (id, height, position, expiry)).

    Every transaction gets a row; the one that consumed its id (expiry > 0) wins over any other
    copy of the same id, before or after it, so a receipt lookup finds the transaction that counted.
    """
    h = outcome.header.height
    for i, txid in enumerate(outcome.tx_ids):
        if txid not in index:
            index[txid] = (txid, h, i, 0)
    for txid, expires, i in outcome.accepted:
        index[txid] = (txid, h, i, expires)


def make_block(registry: Registry, ledger: LedgerReader, window: Window, *, prev: Header, time: int,
               txs: list[BlockTx], signer_cache: Any = None) -> BlockOutcome:
    """Execute ``txs`` on top of ``prev`` at block time ``time`` (never earlier than ``prev.time``)."""
    if time < prev.time:
        raise ValueError(f"block time {time} is before the previous block's {prev.time}")
    height = prev.height + 1
    result = execute_block(registry, ledger, window, chain=prev.chain, height=height, time=time, txs=txs,
                           signer_cache=signer_cache)
    root, node_writes = smt.update(ledger.get_node, state_changes(result.writes))
    raws = [t.raw for t in txs]
    header = Header(
        chain=prev.chain,
        height=height,
        time=time,
        prev=prev.hash().hex(),
        tx_count=len(txs),
        tx_root=merkle.root(raws).hex(),
        receipt_root=merkle.root(result.receipt_bytes).hex(),
        state_root=root.hex(),
    )
    return BlockOutcome(header, raws, [t.id for t in txs], result.receipts, result.receipt_bytes,
                        result.writes, node_writes, result.index_ops, result.accepted)


def make_genesis_block(registry: Registry, genesis: Genesis, ledger: LedgerReader) -> BlockOutcome:
    """Block 0: the genesis state, its root, and ``prev`` = the genesis document hash."""
    state = Overlay(ledger)
    index_ops = registry.apply_genesis(state, genesis)
    root, node_writes = smt.update(ledger.get_node, state_changes(state.writes))
    header = Header(
        chain=genesis.chain,
        height=0,
        time=genesis.time,
        prev=genesis.hash().hex(),
        tx_count=0,
        tx_root=merkle.EMPTY_ROOT.hex(),
        receipt_root=merkle.EMPTY_ROOT.hex(),
        state_root=root.hex(),
    )
    return BlockOutcome(header, [], [], [], [], state.writes, node_writes, index_ops)


class MemoryLedger:
    """A whole ledger in memory: state, tree nodes, index rows, headers and the replay window."""

    def __init__(self, registry: Registry, genesis: Genesis, *, keep_blocks: bool = True) -> None:
        self.registry = registry
        self.keep_blocks = keep_blocks
        self.genesis = genesis
        self.state: dict[bytes, bytes] = {}
        self.nodes: dict[str, smt.Node] = {}
        self.index: dict[str, dict[tuple, dict[str, Any]]] = {t.name: {} for t in registry.indexes}
        self.index_heights: dict[str, dict[tuple, int]] = {t.name: {} for t in registry.indexes}
        self.tx_index: dict[bytes, tuple[bytes, int, int, int]] = {}
        self.window = ReplayWindow()
        self.headers: list[Header] = []
        self.blocks: list[BlockOutcome] = []
        self.apply(make_genesis_block(registry, genesis, self))

    # LedgerReader
    def get(self, key: bytes) -> bytes | None:
        return self.state.get(key)

    def get_node(self, path: str) -> smt.Node | None:
        return self.nodes.get(path)

    @property
    def head(self) -> Header:
        return self.headers[-1]

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.head.state_root)

    def apply(self, outcome: BlockOutcome) -> None:
        for k, v in outcome.writes.items():
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        for p, n in outcome.node_writes.items():
            if n is None:
                self.nodes.pop(p, None)
            else:
                self.nodes[p] = n
        h = outcome.header.height
        for table, put, row, _ in outcome.index_ops:
            rows = self.index[table.name]
            pk = tuple(row[c] for c in table.key)
            if put:
                rows[pk] = dict(row)
                self.index_heights[table.name][pk] = h
            else:
                rows.pop(pk, None)
                self.index_heights[table.name].pop(pk, None)
        merge_tx_index(self.tx_index, outcome)
        self.headers.append(outcome.header)
        if self.keep_blocks:
            self.blocks.append(outcome)

    def add_block(self, txs: list[BlockTx], time: int | None = None) -> BlockOutcome:
        t = self.head.time + 1 if time is None else time
        outcome = make_block(self.registry, self, self.window, prev=self.head, time=t, txs=txs)
        self.apply(outcome)
        return outcome

    def check(self, raw: bytes) -> BlockTx:
        """Stateless checks as a node does them at ingress (no wall clock: expiry judged later)."""
        from .errors import RequestError
        from .tx import check_stateless
        from . import crypto

        params = self.registry.read_params(self)
        try:
            return check_stateless(raw, self.registry.codec, chain=self.genesis.chain, max_bytes=params["max_tx_bytes"])
        except RequestError as err:
            return RefusedTx(crypto.tagged_hash(crypto.TAG_TX_ID, raw), raw, err.code, dict(err.detail))

    def encode_receipts(self) -> list[bytes]:
        return [canonical(r) for b in self.blocks for r in b.receipts]
