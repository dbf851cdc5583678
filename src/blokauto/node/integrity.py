"""Structural checks of a node's stored data, without re-executing anything.

What a node can check cheaply against what it committed (re-execution is ``audit``'s job):

- a block: its stored hash is its header's hash, it links to the previous header, its
  transactions, receipts and ids match the header's roots and counts, and every attestation is
  a valid signature over the header (at least one by a known node key);
- the state: ``state.db``'s root is the state root of the header at its height; every state
  tree node hashes to the entry its parent holds for it, down to the leaves; the leaves are
  exactly the state entries (compared as a multiset hash, so the check needs no memory per key);
  every index row matches the check hash written with it; every tx-index row points at its
  transaction in the block log.

``verify_block`` raises ``IntegrityFault`` (used before serving a block); the ``*_findings``
functions yield every problem with height, kind and message (used by the scrubber, backups,
restores and audit), and never stop at the first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Iterator

from ..core import crypto, merkle, smt
from ..core.block import Header, NodeSignature, attestation_bytes
from ..core.module import IndexTable
from ..store.blocks import BlockLog, CorruptBlock, StoredBlock
from ..store.layer_writer import digest_key, index_row_hash, unpack_digest
from .faults import IntegrityFault

_SIGS = b',"sigs":['
_MOD = 1 << 256


@dataclass(frozen=True)
class Finding:
    height: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"height {self.height}" if self.height is not None else "chain"
        return f"[{self.kind}] {where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.height, "kind": self.kind, "message": self.message}


def tx_id_of(raw: bytes) -> bytes | None:
    """The id of a canonical signed transaction (``{"body":…,"sigs":[…]}``), or None if it is not one."""
    if not raw.startswith(b'{"body":') or not raw.endswith(b"]}"):
        return None
    end = raw.rfind(_SIGS)
    if end < 0:
        return None
    return crypto.tagged_hash(crypto.TAG_TX_ID, raw[8:end])


# ---------------------------------------------------------------- blocks


def checked_attestations(attestations: Iterable[NodeSignature],
                         header_hash: bytes) -> Iterator[tuple[NodeSignature, bool]]:
    """Each attestation with whether it is a valid signature by its node key over the header with
    ``header_hash`` (an unreadable key or signature is not)."""
    message = attestation_bytes(header_hash)
    for att in attestations:
        try:
            ok = crypto.verify_signature(crypto.public_key_from_did(att.node), bytes.fromhex(att.sig), message)
        except (ValueError, crypto.InvalidKey):
            ok = False
        yield att, ok


def block_problems(b: StoredBlock, *, prev: bytes | None, attestations: list[NodeSignature],
                   nodes: Collection[str], require_attestation: bool = False,
                   own_node: str | None = None) -> list[tuple[str, str]]:
    """(kind, message) for everything wrong with one stored block. ``prev``: the previous header's
    hash (None: not checked); ``nodes``: node keys whose attestations count. A block may lack
    attestations on a node that does not attest (an observer) until its peers' arrive; with
    ``require_attestation`` (a solo chain's audit) it must have one; with ``own_node`` (a solo
    node, which attests every block it commits) that node's own."""
    out: list[tuple[str, str]] = []
    h = b.header
    header_hash = h.hash()
    if b.hash != header_hash:
        out.append(("header", "the stored block hash is not the hash of the stored header"))
    if prev is not None and h.prev != prev.hex():
        out.append(("link", "the header does not link to the previous header (prev hash differs)"))
    if h.tx_count != len(b.txs) or len(b.receipts) != len(b.txs) or len(b.ids) != len(b.txs):
        out.append(("count", f"the header counts {h.tx_count} transactions; stored are {len(b.txs)} transactions, "
                             f"{len(b.receipts)} receipts, {len(b.ids)} ids"))
    if merkle.root(b.txs).hex() != h.tx_root:
        out.append(("tx-root", "the stored transactions do not hash to the header's tx root"))
    if merkle.root(b.receipts).hex() != h.receipt_root:
        out.append(("receipt-root", "the stored receipts do not hash to the header's receipt root"))
    for i, (raw, txid) in enumerate(zip(b.txs, b.ids)):
        if tx_id_of(raw) != txid:
            out.append(("tx-id", f"the stored id of transaction {i} is not the hash of its body"))
            break
    valid = 0
    if own_node is not None and not any(att.node == own_node for att in attestations):
        out.append(("attestation", f"this node's own attestation ({own_node}) is missing"))
    for att, ok in checked_attestations(attestations, header_hash):
        if not ok:
            out.append(("attestation", f"the attestation by {att.node} does not verify"))
        elif att.node in nodes:
            valid += 1
    if valid == 0 and require_attestation:
        out.append(("attestation", "no valid attestation by a node key of the consortium"))
    return out


def verify_block(log: BlockLog, height: int, nodes: Collection[str], own_node: str | None = None) -> StoredBlock | None:
    """The stored block at ``height`` after checking it; raises ``IntegrityFault`` if it is damaged."""
    try:
        b = log.block(height)
    except CorruptBlock as exc:
        raise IntegrityFault("the block log", f"block {height}", exc.reason, scope="block", height=height) from None
    if b is None:
        return None
    problems = block_problems(b, prev=None, attestations=log.attestations(height), nodes=nodes,
                              own_node=own_node)
    if b.header.height != height:
        problems.append(("header", f"the header stored under height {height} says height {b.header.height}"))
    if height > 0:
        before = log.header(height - 1)
        if before is not None and b.header.prev != before.hash().hex():
            problems.append(("link", "the header does not link to the previous header (prev hash differs)"))
    if problems:
        raise IntegrityFault("the block log", f"block {height}", "; ".join(m for _, m in problems),
                             scope="block", height=height)
    return b


def block_findings(log: BlockLog, start: int, end: int, nodes: Callable[[int], Collection[str]],
                   progress: Callable[[int], None] | None = None, own_node: str | None = None) -> Iterator[Finding]:
    """Every problem of blocks ``start``..``end`` (each must link to the one before it)."""
    before = log.header(start - 1) if start > 0 else None
    prev = before.hash() if before is not None else None
    for height in range(start, end + 1):
        try:
            b = log.block(height)
        except CorruptBlock as exc:
            yield Finding(height, "block", exc.reason)
            prev = None
            continue
        if b is None:
            yield Finding(height, "missing-block", f"block {height} is missing from the block log")
            prev = None
            continue
        if b.header.height != height:
            yield Finding(height, "header", f"the header stored under height {height} says height {b.header.height}")
        for kind, message in block_problems(b, prev=prev, attestations=log.attestations(height),
                                            nodes=nodes(height), own_node=own_node):
            yield Finding(height, kind, message)
        prev = b.header.hash()
        if progress is not None:
            progress(height)


# ---------------------------------------------------------------- state


def state_findings(conn: sqlite3.Connection, header: Header | None, tables: list[IndexTable],
                   log: BlockLog | None = None) -> Iterator[Finding]:
    """Every problem of a ``state.db`` read inside one read transaction, against ``header``, the
    header at the height state.db records (None: state.db claims a height the log lacks)."""
    row = conn.execute("SELECT v FROM meta WHERE k='height'").fetchone()
    height = -1 if row is None else int(row[0])
    row = conn.execute("SELECT v FROM meta WHERE k='root'").fetchone()
    root = smt.EMPTY_ROOT if row is None else bytes(row[0])
    if header is None:
        if height >= 0:
            yield Finding(height, "state", f"state.db is at height {height}, which the block log does not hold")
        return
    if root.hex() != header.state_root:
        yield Finding(height, "state-root", "state.db records a state root that is not the header's")
    yield from _tree_findings(conn, height, root)
    for table in tables:
        cols = ", ".join(table.column_names)
        bad = count = 0
        total = 0
        for r in conn.execute(f"SELECT {cols}, _height, CAST(_h AS BLOB) FROM {table.name}"):
            count += 1
            total = (total + int.from_bytes(bytes(r[-1]), "big")) % _MOD
            if index_row_hash(table.name, tuple(r[:-2]), r[-2]) != bytes(r[-1]):
                bad += 1
                if bad <= 3:
                    yield Finding(r[-2], "index-row", f"{table.name} row {tuple(r[:-2])!r:.160} does not match "
                                                      f"its check hash")
        if bad > 3:
            yield Finding(height, "index-row", f"{table.name}: {bad} rows in all do not match their check hash")
        row = conn.execute("SELECT v FROM meta WHERE k=?", (digest_key(table.name),)).fetchone()
        want = unpack_digest(row[0] if row else None)
        if (count, total) != want:
            yield Finding(height, "index-row", f"{table.name} holds {count} rows whose check hashes do not add up to "
                                               f"the digest written with them ({want[0]} rows): a row was removed, "
                                               f"added or changed behind the node")
    if log is not None:
        yield from _tx_index_findings(conn, log, height)


def _tree_findings(conn: sqlite3.Connection, height: int, root: bytes) -> Iterator[Finding]:
    """Walk the stored tree in path order: every node hashes to its parent's entry for it, and its
    leaves are exactly the state entries."""
    expected: dict[str, bytes] = {"": root}
    leaves_sum = leaves = 0
    reported = 0

    def report(message: str) -> Iterator[Finding]:
        nonlocal reported
        reported += 1
        if reported <= 5:
            yield Finding(height, "state-tree", message)

    for path, raw in conn.execute("SELECT path, CAST(node AS BLOB) FROM smt ORDER BY path"):
        want = expected.pop(path, None)
        try:
            node = smt.decode_node(bytes(raw))
        except ValueError:
            yield from report(f"state tree node {path!r} cannot be decoded")
            continue
        if want is None:
            yield from report(f"state tree node {path!r} is not referenced by its parent")
        elif smt.node_hash(node) != want:
            yield from report(f"state tree node {path!r} does not hash to its parent's entry for it"
                              if path else "the state tree's root node does not hash to the recorded root")
        for i in range(16):
            entry = node[i]
            if not entry:
                continue
            leaf = node[16 + i]
            if leaf is None:
                expected[path + "0123456789abcdef"[i]] = entry[1:]
            else:
                lh = smt.leaf_hash(leaf[0], leaf[1])
                if lh != entry[1:]:
                    yield from report(f"a leaf under {path!r} does not match its entry")
                leaves_sum = (leaves_sum + int.from_bytes(lh, "big")) % _MOD
                leaves += 1
    if root == smt.EMPTY_ROOT:
        expected.pop("", None)
    for path in sorted(expected)[:5]:
        yield from report(f"state tree node {path!r} is missing")
    state_sum = entries = 0
    for k, v in conn.execute("SELECT CAST(k AS BLOB), CAST(v AS BLOB) FROM state"):
        lh = smt.leaf_hash(smt.key_hash(bytes(k)), smt.value_hash(bytes(v)))
        state_sum = (state_sum + int.from_bytes(lh, "big")) % _MOD
        entries += 1
    if entries != leaves or state_sum != leaves_sum:
        yield Finding(height, "state-entry", f"the state entries ({entries}) are not the state tree's leaves "
                                             f"({leaves}): a value was changed, added or removed")
    if reported > 5:
        yield Finding(height, "state-tree", f"{reported} state tree problems in all")


def _tx_index_findings(conn: sqlite3.Connection, log: BlockLog, height: int) -> Iterator[Finding]:
    """Every tx-index row points at its transaction, and every transaction up to ``height`` has a row
    (a transaction included twice has one row, at the copy that consumed its id)."""
    bad = 0

    def problem(h: int, message: str) -> Iterator[Finding]:
        nonlocal bad
        bad += 1
        if bad <= 3:
            yield Finding(h, "tx-index", message)

    def missing_rows(h: int, seen: set[bytes]) -> Iterator[Finding]:
        for txid in log.ids(h):
            if txid not in seen and conn.execute("SELECT 1 FROM tx_index WHERE id=?", (txid,)).fetchone() is None:
                yield from problem(h, f"tx_index lacks {txid.hex()} of block {h}")

    rows = conn.execute("SELECT CAST(id AS BLOB), height, idx FROM tx_index ORDER BY height, idx")
    current, ids, seen = -1, [], set()
    for txid, h, idx in rows:
        txid = bytes(txid)
        if h != current:
            if current >= 0:
                yield from missing_rows(current, seen)
            for skipped in range(current + 1, min(h, height + 1)):
                yield from missing_rows(skipped, set())
            current, ids, seen = h, log.ids(h), set()
        seen.add(txid)
        if not (0 <= idx < len(ids)) or ids[idx] != txid:
            yield from problem(h, f"tx_index says {txid.hex()} is transaction {idx} of block {h}; the block log disagrees")
    if current >= 0:
        yield from missing_rows(current, seen)
    for skipped in range(current + 1, height + 1):
        yield from missing_rows(skipped, set())
    if bad > 3:
        yield Finding(height, "tx-index", f"{bad} tx_index problems in all")
