"""Re-verify a node's whole data folder from genesis, trusting nothing in it.

For every block: the header is the one stored under its height and links to the previous one;
the tx and receipt roots and the tx ids match the stored transactions and receipts; every
signature verifies (in worker processes); re-executing gives the same receipts and state root;
every attestation is a valid signature by a node key. At the height ``state.db`` was written at,
every state entry, state tree node, tx index row and module index row is compared with the
replayed ledger. Each problem is reported with its height and what failed.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core import crypto, smt
from ..core.block import Genesis
from ..core.chain import MemoryLedger, make_block
from ..core.encoding import decode
from ..core.errors import BlokautoError
from ..core.execute import BlockTx, RefusedTx
from ..core.registry import Registry
from ..modules import default_registry
from ..modules.governance import GovernanceReader
from ..store.blocks import BlockLog, CorruptBlock, StoredBlock
from ..store.head import HeadMarker
from ..store.layer_writer import index_row_hash
from ..store.sqlite import connect
from ..store.state import SCHEMA_VERSION
from .folder_lock import refuse_if_in_use
from .integrity import Finding, block_problems
from .journal import JOURNAL_FILE, JournalDamaged, parse_journal
from .verifier import VerifierPool


@dataclass
class AuditReport:
    problems: int = 0  # every problem found; ``findings`` lists the first ``max_findings`` of them
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
    """Every problem of a data folder, each with height, kind and message; the folder is only read.

    Refused while another process's node runs on the folder: the blocks it writes meanwhile would
    show as problems (its own process may audit it, idle, as the demo does)."""
    refuse_if_in_use(data_dir, "audit it (blocks being written would look like damage; `blokauto node scrub` "
                               "checks a running node's files)", unless_pid=os.getpid())
    registry = registry or default_registry()
    report = AuditReport()
    found = report.findings

    def finding(height: int | None, kind: str, message: str) -> None:
        report.problems += 1
        if len(found) < max_findings:
            found.append(Finding(height, kind, message))

    chain_path = data_dir / "chain.db"
    if not chain_path.exists():
        finding(None, "missing", f"{chain_path} does not exist")
        report.state_height = state_height_of(data_dir)
        return report
    try:
        blocks = BlockLog(chain_path, readonly=True)
        blocks.height()
    except sqlite3.DatabaseError as exc:
        finding(None, "block", f"SQLite cannot read chain.db ({exc})")
        return report
    try:
        state = _open_state(data_dir, finding)
    except sqlite3.DatabaseError as exc:
        finding(None, "state", f"SQLite cannot read state.db ({exc}); the node rebuilds it from the block log")
        state = None
    try:
        genesis = blocks.genesis()
        if genesis is None:
            finding(None, "genesis", "chain.db holds no genesis document")
            return report
        for key in blocks.unknown_meta():
            finding(None, "meta", f"chain.db's meta table holds {key!r}, which this software never writes")
        gfile = data_dir / "genesis.json"
        if gfile.exists() and decode(gfile.read_bytes(), Genesis).hash() != genesis.hash():
            finding(None, "genesis", "genesis.json differs from the genesis stored in chain.db")
        report.height = height = blocks.height()
        state_height = -1
        if state is not None:
            row = state.execute("SELECT v FROM meta WHERE k='height'").fetchone()
            state_height = -1 if row is None else int(row[0])
        report.state_height = state_height
        _check_committed_head(data_dir, blocks, height, state_height, finding)
        _check_journal(data_dir, finding)
        ledger = MemoryLedger(registry, genesis, keep_blocks=False)
        last_write: dict[bytes, int] = {k: 0 for k in ledger.state}
        pool = VerifierPool(genesis.chain, registry, workers=workers)
        try:
            _replay(blocks, height, registry, ledger, last_write, pool, state, state_height, report, finding, progress)
        except sqlite3.DatabaseError as exc:
            finding(report.blocks, "block", f"SQLite cannot read chain.db or state.db to the end ({exc}); the "
                                            f"audit stopped at block {report.blocks}")
        finally:
            pool.close()
    finally:
        blocks.close()
        if state is not None:
            state.close()
    return report


def state_height_of(data_dir: Path) -> int:
    """The height state.db records (-1: none, or a state.db SQLite cannot read)."""
    try:
        conn = connect(data_dir / "state.db", durable=False, readonly=True)
        try:
            row = conn.execute("SELECT v FROM meta WHERE k='height'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return -1
    return -1 if row is None else int(row[0])


def _open_state(data_dir: Path, finding: Callable[[int | None, str, str], None]) -> Any:
    path = data_dir / "state.db"
    if not path.exists():
        return None
    conn = connect(path, durable=False, readonly=True)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        finding(None, "state", f"state.db is in layout {version}, this software's is {SCHEMA_VERSION}: the node "
                               f"rebuilds it from the block log at its next start; its rows were not compared")
        conn.close()
        return None
    return conn


def _check_committed_head(data_dir: Path, blocks: BlockLog, height: int, state_height: int,
                          finding: Callable[[int | None, str, str], None]) -> None:
    """The log must hold every block the node recorded as committed (head.json, state.db)."""
    if state_height > height:
        finding(state_height, "missing-block", f"state.db is at height {state_height}, beyond the last block {height} "
                                               f"of chain.db: blocks were lost from the block log")
    marker = HeadMarker(data_dir)
    head = marker.read()
    if marker.unreadable:
        finding(None, "head", marker.unreadable)
    if head is None:
        return
    if head.height > height:
        finding(head.height, "missing-block", f"head.json records block {head.height} as committed, beyond the last "
                                              f"block {height} of chain.db: blocks were lost from the block log")
    else:
        stored = blocks.header(head.height)
        if stored is None or stored.hash().hex() != head.hash:
            finding(head.height, "head", "the stored header is not the one head.json records as committed")


def _check_journal(data_dir: Path, finding: Callable[[int | None, str, str], None]) -> None:
    """The intake journal holds every group head.json records as answered (a start refuses otherwise)."""
    path = data_dir / JOURNAL_FILE
    head = HeadMarker(data_dir).read()
    answered = head.journal if head is not None else None
    if not path.exists():
        if answered is not None and answered[1] > 0 and not [p for p in data_dir.glob(f"{JOURNAL_FILE}.*") if ".torn-" not in p.name]:
            finding(None, "journal", f"{path} is missing, but head.json records {answered[1]} acknowledged group(s) "
                                     f"of generation {answered[0]}: their transactions may be in no block")
        return
    try:
        _, _, generation, groups = parse_journal(path.read_bytes(), path, answered)
    except JournalDamaged as exc:
        finding(None, "journal", str(exc))
        return
    if answered is not None and (generation < answered[0] or (generation == answered[0] and groups < answered[1])):
        finding(None, "journal", f"{path} holds {groups} group(s) of generation {generation}; head.json records "
                                 f"{answered[1]} acknowledged group(s) of generation {answered[0]}")


def _replay(blocks: BlockLog, height: int, registry: Registry, ledger: MemoryLedger, last_write: dict[bytes, int],
            pool: VerifierPool, state: Any, state_height: int, report: AuditReport,
            finding: Callable[[int | None, str, str], None], progress: Callable[[int, int], None] | None) -> None:
    """Check every block's structure; re-execute each until one cannot be, then only the structure."""
    prev_hash: bytes | None = ledger.genesis.hash()
    executing = True
    for h in range(0, height + 1):
        try:
            b = blocks.block(h)
        except CorruptBlock as exc:
            finding(h, "block", exc.reason)
            prev_hash, executing = None, _stop_executing(h, executing, finding)
            continue
        if b is None:
            finding(h, "missing-block", f"block {h} is missing from the block log")
            prev_hash, executing = None, _stop_executing(h, executing, finding)
            continue
        nodes = _node_keys(registry, ledger)
        for kind, message in block_problems(b, prev=prev_hash, attestations=blocks.attestations(h), nodes=nodes,
                                            require_attestation=True):
            finding(h, kind, message)
        for att in blocks.attestations(h):
            if att.node not in nodes:
                finding(h, "attestation", f"{att.node} attested but is not a node key of the consortium")
        prev_hash = b.header.hash()
        if h == 0:
            if ledger.head != b.header:
                finding(0, "state-root", f"block 0 has state root {b.header.state_root}; the genesis document "
                                         f"gives {ledger.head.state_root}")
        elif executing:
            executing = _reexecute(b, registry, ledger, last_write, pool, report, finding)
        report.blocks += 1
        if state is not None and h == state_height:
            if executing:
                report.state_entries = _compare_state(state, ledger, last_write, h, registry, finding)
            else:
                finding(h, "state", "state.db was not compared: the chain could not be re-executed up to its height")
        if progress is not None:
            progress(h + 1, height + 1)


def _stop_executing(h: int, executing: bool, finding: Callable[[int | None, str, str], None]) -> bool:
    if executing:
        finding(h, "re-execution", f"re-execution stops at block {h}; the blocks after it are checked for structure "
                                   f"only (links, roots, ids, attestations)")
    return False


def _reexecute(b: StoredBlock, registry: Registry, ledger: MemoryLedger, last_write: dict[bytes, int],
               pool: VerifierPool, report: AuditReport, finding: Callable[[int | None, str, str], None]) -> bool:
    """Re-execute one block and compare receipts and state root; False if it cannot be executed."""
    h = b.header.height
    txs = _checked_txs(pool, b, finding)
    report.signatures += sum(len(t.tx.sigs) for t in txs if not isinstance(t, RefusedTx))
    if b.header.time < ledger.head.time:
        finding(h, "time", f"the block time {b.header.time} is before the previous block's {ledger.head.time}")
        return _stop_executing(h, True, finding)
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
    return True


def _node_keys(registry: Registry, ledger: MemoryLedger) -> set[str]:
    """The node keys in force: the consensus record's (read through governance's door), or genesis'."""
    consensus = registry.provider(GovernanceReader).consensus(ledger)
    return set(consensus.nodes) if consensus else set(ledger.genesis.node_keys())


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


def _compare_state(conn: Any, ledger: MemoryLedger, last_write: dict[bytes, int], h: int,
                   registry: Registry, finding: Callable[[int | None, str, str], None]) -> int:
    """Compare every table of ``state.db`` with the replayed ledger at the same height."""
    conn.text_factory = lambda b: b.decode(errors="replace")  # tampered text must not stop the audit
    conn.execute("BEGIN")
    try:
        return _compare_tables(conn, ledger, last_write, h, registry, finding)
    finally:
        conn.execute("COMMIT")
        conn.text_factory = str


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
        for row in conn.execute(f"SELECT {cols}, _height, _h FROM {table.name}"):
            values, check = tuple(row[:-2]), row[-1]
            row = row[:-1]
            pk = tuple(values[i] for i in key_pos)
            got[pk] = values
            if index_row_hash(table.name, values, row[-1]) != check:
                finding(row[-1], "index-row", f"{table.name} row {pk!r} does not match its check hash")
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
