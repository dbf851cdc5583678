"""Re-verify a node's whole data folder from genesis, trusting nothing in it.

For every block: the header is the one stored under its height and links to the previous one;
the tx and receipt roots and the tx ids match the stored transactions and receipts; every
signature verifies (in worker processes); re-executing gives the same receipts and state root;
every attestation is a valid signature by a node key. At the height ``state.db`` was written at,
every state entry, state tree node, tx index row and module index row is compared with the
replayed ledger. Each problem is reported with its height and what failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core import crypto, merkle, smt
from ..core.block import Genesis, attestation_bytes
from ..core.chain import MemoryLedger, make_block
from ..core.encoding import decode
from ..core.errors import BlokautoError
from ..core.execute import BlockTx, RefusedTx
from ..core.registry import Registry
from ..modules import default_registry
from ..modules.governance.state import CONSENSUS
from ..store.blocks import BlockLog, CorruptBlock, StoredBlock
from ..store.state import StateStore
from .verifier import VerifierPool


@dataclass(frozen=True)
class Finding:
    height: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"height {self.height}" if self.height is not None else "chain"
        return f"[{self.kind}] {where}: {self.message}"


@dataclass
class AuditReport:
    height: int = -1
    blocks: int = 0
    txs: int = 0
    signatures: int = 0
    state_height: int = -1
    state_entries: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def audit(data_dir: Path, *, registry: Registry | None = None, workers: int | None = None,
          progress: Callable[[int, int], None] | None = None, max_findings: int = 200) -> AuditReport:
    registry = registry or default_registry()
    report = AuditReport()
    found = report.findings

    def finding(height: int | None, kind: str, message: str) -> None:
        if len(found) < max_findings:
            found.append(Finding(height, kind, message))

    chain_path = data_dir / "chain.db"
    if not chain_path.exists():
        finding(None, "missing", f"{chain_path} does not exist")
        return report
    blocks = BlockLog(chain_path)
    genesis = blocks.genesis()
    if genesis is None:
        finding(None, "genesis", "chain.db holds no genesis document")
        return report
    gfile = data_dir / "genesis.json"
    if gfile.exists() and decode(gfile.read_bytes(), Genesis).hash() != genesis.hash():
        finding(None, "genesis", "genesis.json differs from the genesis stored in chain.db")
    report.height = height = blocks.height()
    state = StateStore(data_dir / "state.db", registry) if (data_dir / "state.db").exists() else None
    state_height = state.flushed_height if state is not None else -1
    report.state_height = state_height
    ledger = MemoryLedger(registry, genesis, keep_blocks=False)
    last_write: dict[bytes, int] = {k: 0 for k in ledger.state}
    pool = VerifierPool(genesis.chain, registry, workers=workers)
    try:
        try:
            _replay(blocks, height, registry, ledger, last_write, pool, state, state_height, report, finding, progress)
        except CorruptBlock as exc:
            finding(exc.height, "block", exc.reason)
        if state is not None and state_height > height:
            finding(state_height, "state", f"state.db is at height {state_height}, beyond the last block {height}")
    finally:
        pool.close()
        blocks.close()
        if state is not None:
            state.close()
    return report


def _replay(blocks: BlockLog, height: int, registry: Registry, ledger: MemoryLedger, last_write: dict[bytes, int],
            pool: VerifierPool, state: StateStore | None, state_height: int, report: AuditReport,
            finding: Callable[[int | None, str, str], None], progress: Callable[[int, int], None] | None) -> None:
    prev_hash = ledger.genesis.hash()
    expected_h = 0
    for b in blocks.blocks(0, height):
        h = b.header.height
        if h != expected_h:
            finding(h, "missing-block", f"expected block {expected_h} next, found {h}")
            return
        expected_h += 1
        if b.hash != b.header.hash():
            finding(h, "header", "the stored block hash is not the hash of the stored header")
        if b.header.prev != prev_hash.hex():
            finding(h, "link", "the header does not link to the previous header (prev hash differs)")
        prev_hash = b.header.hash()
        _check_roots(b, finding)
        if h == 0:
            if ledger.head != b.header:
                finding(0, "state-root", f"block 0 has state root {b.header.state_root}; the genesis document "
                                         f"gives {ledger.head.state_root}")
        else:
            txs = _checked_txs(pool, b, finding)
            report.signatures += sum(len(t.tx.sigs) for t in txs if not isinstance(t, RefusedTx))
            outcome = make_block(registry, ledger, ledger.window, prev=ledger.head, time=b.header.time, txs=txs)
            for i, (mine, stored) in enumerate(zip(outcome.receipt_bytes, b.receipts)):
                if mine != stored:
                    finding(h, "receipt", f"receipt {i} differs from re-execution (stored {stored[:120]!r})")
            if outcome.header.state_root != b.header.state_root:
                finding(h, "state-root", f"re-execution gives state root {outcome.header.state_root}, "
                                         f"the header says {b.header.state_root}")
            ledger.apply(outcome)
            for k in outcome.writes:
                last_write[k] = h
            report.txs += len(b.txs)
        _check_attestations(blocks, b, ledger, finding)
        report.blocks += 1
        if state is not None and h == state_height:
            report.state_entries = _compare_state(state, ledger, last_write, h, registry, finding)
        if progress is not None:
            progress(h + 1, height + 1)


def _check_roots(b: StoredBlock, finding: Callable[[int | None, str, str], None]) -> None:
    h = b.header.height
    if b.header.tx_count != len(b.txs) or len(b.receipts) != len(b.txs) or len(b.ids) != len(b.txs):
        finding(h, "count", f"header counts {b.header.tx_count} txs; stored {len(b.txs)} txs, "
                            f"{len(b.receipts)} receipts, {len(b.ids)} ids")
    if merkle.root(b.txs).hex() != b.header.tx_root:
        finding(h, "tx-root", "the stored transactions do not hash to the header's tx root")
    if merkle.root(b.receipts).hex() != b.header.receipt_root:
        finding(h, "receipt-root", "the stored receipts do not hash to the header's receipt root")


def _checked_txs(pool: VerifierPool, b: StoredBlock,
                 finding: Callable[[int | None, str, str], None]) -> list[BlockTx]:
    results = pool.check(b.txs, now_ms=None, max_bytes=1 << 30, max_ttl_ms=None).result()
    out: list[BlockTx] = []
    for i, (raw, r) in enumerate(zip(b.txs, results)):
        if isinstance(r, BlokautoError):
            txid = crypto.tagged_hash(crypto.TAG_TX_ID, raw)
            if i < len(b.ids):
                txid = b.ids[i]
            out.append(RefusedTx(txid, raw, r.code, dict(r.detail)))
        else:
            if i < len(b.ids) and b.ids[i] != r.id:
                finding(b.header.height, "tx-id", f"stored id of transaction {i} is not the hash of its body")
            out.append(r)
    return out


def _check_attestations(blocks: BlockLog, b: StoredBlock, ledger: MemoryLedger,
                        finding: Callable[[int | None, str, str], None]) -> None:
    h = b.header.height
    consensus = CONSENSUS.get(ledger)
    nodes = {n.did for n in consensus.nodes} if consensus else set()
    message = attestation_bytes(b.header.hash())
    atts = blocks.attestations(h)
    valid = 0
    for att in atts:
        try:
            ok = crypto.verify_signature(crypto.public_key_from_did(att.node), bytes.fromhex(att.sig), message)
        except (ValueError, crypto.InvalidKey):
            ok = False
        if not ok:
            finding(h, "attestation", f"the attestation by {att.node} does not verify")
        elif att.node not in nodes:
            finding(h, "attestation", f"{att.node} attested but is not a node key of the consortium")
        else:
            valid += 1
    if valid == 0:
        finding(h, "attestation", "no valid attestation by a node key")


def _compare_state(state: StateStore, ledger: MemoryLedger, last_write: dict[bytes, int], h: int,
                   registry: Registry, finding: Callable[[int | None, str, str], None]) -> int:
    """Compare every table of ``state.db`` with the replayed ledger at the same height."""
    with state.snapshot() as snap:
        snap.conn.text_factory = lambda b: b.decode(errors="replace")  # tampered text must not stop the audit
        try:
            return _compare_tables(snap.conn, ledger, last_write, h, registry, finding)
        finally:
            snap.conn.text_factory = str


def _compare_tables(conn: Any, ledger: MemoryLedger, last_write: dict[bytes, int], h: int,
                    registry: Registry, finding: Callable[[int | None, str, str], None]) -> int:
    entries = 0
    seen: set[bytes] = set()
    for k, v in conn.execute("SELECT CAST(k AS BLOB), CAST(v AS BLOB) FROM state"):
        k = bytes(k)
        seen.add(k)
        entries += 1
        expected = ledger.state.get(k)
        if expected is None:
            finding(h, "state-entry", f"state.db has {k.decode(errors='replace')!r}, which the chain never wrote")
        elif expected != v:
            finding(last_write.get(k, h), "state-entry",
                    f"{k.decode(errors='replace')!r} differs from the value written at height {last_write.get(k, h)}")
    for k in ledger.state.keys() - seen:
        finding(last_write.get(k, h), "state-entry", f"{k.decode(errors='replace')!r} is missing from state.db")
    stored_nodes: dict[str, Any] = {}
    for p, n in conn.execute("SELECT path, CAST(node AS BLOB) FROM smt"):
        try:
            stored_nodes[p] = smt.decode_node(n)
        except ValueError:
            stored_nodes[p] = None
            finding(h, "state-tree", f"state tree node {p!r} cannot be decoded")
    if stored_nodes != ledger.nodes:
        bad = sorted(p for p in stored_nodes.keys() | ledger.nodes.keys() if stored_nodes.get(p) != ledger.nodes.get(p))
        finding(h, "state-tree", f"{len(bad)} state tree node(s) differ from the replayed tree, first at path {bad[0]!r}")
    row = conn.execute("SELECT v FROM meta WHERE k='root'").fetchone()
    if row is None or bytes(row[0]).hex() != ledger.head.state_root:
        finding(h, "state-root", "state.db records a state root that is not the header's")
    _compare_tx_index(conn, ledger, finding)
    for table in registry.indexes:
        expected = {pk: tuple(r[c] for c in table.column_names) for pk, r in ledger.index[table.name].items()}
        heights = ledger.index_heights[table.name]
        cols = ", ".join(table.column_names)
        key_pos = [table.column_names.index(k) for k in table.key]
        got: dict[tuple, tuple] = {}
        for row in conn.execute(f"SELECT {cols}, _height FROM {table.name}"):
            values = tuple(row[:-1])
            pk = tuple(values[i] for i in key_pos)
            got[pk] = values
            if pk not in expected:
                finding(row[-1], "index-row", f"{table.name} has row {pk!r} that no transaction wrote")
            elif expected[pk] != values:
                finding(heights.get(pk, row[-1]), "index-row",
                        f"{table.name} row {pk!r} differs from what height {heights.get(pk, '?')} wrote")
            elif heights.get(pk, row[-1]) != row[-1]:
                finding(row[-1], "index-row", f"{table.name} row {pk!r} claims height {row[-1]}, written at {heights[pk]}")
        for pk in expected.keys() - got.keys():
            finding(heights.get(pk), "index-row", f"{table.name} row {pk!r} is missing")
    return entries


def _compare_tx_index(conn: Any, ledger: MemoryLedger, finding: Callable[[int | None, str, str], None]) -> None:
    expected = {txid: row[1:] for txid, row in ledger.tx_index.items()}
    got = {bytes(i): (hh, idx, e) for i, hh, idx, e in
           conn.execute("SELECT CAST(id AS BLOB), height, idx, expires FROM tx_index")}
    for txid, row in got.items():
        want = expected.get(txid)
        if want is None:
            finding(row[0], "tx-index", f"tx_index has {txid.hex()}, which is in no block")
        elif want != row:
            finding(want[0], "tx-index", f"tx_index entry of {txid.hex()} says {row}, the block log says {want}")
    for txid in expected.keys() - got.keys():
        finding(expected[txid][0], "tx-index", f"tx_index lacks {txid.hex()}")
