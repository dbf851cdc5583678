"""Joining an existing chain from another node's snapshot.

A new node (a new organisation admitted by vote, or a replacement machine) needs the chain so far.
It fetches another node's block log and trusts nothing about it but what it checks itself:

1. the log's genesis is the consortium's trust anchor it already holds (``DATA/genesis.json``,
   obtained out of band);
2. every header links to the previous one, from block 0 (which commits to that genesis) to the
   newest;
3. a recent header (the newest that has them yet) carries a quorum of attestations by the
   consortium's node keys, and the headers after it link to it.

Then ``node start`` rebuilds the state by re-executing every block and stops at the first header
its own execution does not reproduce, and follows the ordering stream from the position the last
block ended at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from ..client import signed_http
from ..core.crypto import KeyPair
from ..keystore import KeyStore

from ..store.blocks import BlockLog
from ..verify import TrustAnchor, VerificationError, verify_checkpoint
from .netconfig import NETWORK_FILE
from .node import load_genesis


class SnapshotRefused(ValueError):
    """The folder cannot take a snapshot (the command's usage: exit 2); nothing was downloaded."""


@dataclass(frozen=True)
class Snapshot:
    height: int
    stream_seq: int
    attestations: int
    bytes: int


def _node_key(data_dir: Path, genesis: Any) -> KeyPair:
    """The new node's own key (DATA/keys, kind node): the block log is served to consortium node keys only."""
    store = KeyStore(data_dir / "keys")
    nodes = [e for e in store.entries() if e.kind == "node"]
    if not nodes:
        raise FileNotFoundError(f"{data_dir / 'keys'} holds no node key: a snapshot is served to the consortium's node "
                                f"keys only; create this node's key (`blokauto keys new NAME --node-key`) and have the "
                                f"consortium add it (docs/network.md)")
    chosen = next((e for e in nodes if e.did in genesis.node_keys()), nodes[0])
    return store.load(chosen.name)


def fetch_snapshot(url: str, data_dir: Path, *, progress: Callable[[int, int], None] | None = None) -> Snapshot:
    data_dir = Path(data_dir)
    genesis = load_genesis(data_dir)
    if genesis is None:
        raise FileNotFoundError(f"{data_dir} holds no genesis.json: put the consortium's trust anchor there first")
    target = data_dir / "chain.db"
    if target.exists():
        raise FileExistsError(f"{target} exists; a snapshot only starts a new node (use an empty data folder)")
    if not (data_dir / NETWORK_FILE).is_file():
        # Without network.json the node would order on its own: a second orderer of a one-node chain,
        # signing blocks at heights the first one signed differently (a fork under the same key).
        raise SnapshotRefused(f"{data_dir} holds no {NETWORK_FILE}: a snapshot starts another node of a networked "
                              f"chain (docs/network.md). A chain without a network has one node, the one that "
                              f"orders it; to read its data elsewhere, copy it with `blokauto node backup`")
    key = _node_key(data_dir, genesis)
    part = data_dir / "chain.db.part"
    size = 0
    with signed_http(url.rstrip("/"), key, timeout=60) as http, http.stream("GET", "/v1/snapshot/chain") as r:
        if r.status_code != 200:
            r.read()
            try:
                said = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                said = r.text[:200]
            raise ConnectionError(f"{url} did not serve a snapshot (HTTP {r.status_code}: {said})")
        total = int(r.headers.get("content-length", 0))
        with open(part, "wb") as out:
            for chunk in r.iter_bytes(1 << 20):
                out.write(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(size, total)
            out.flush()
            os.fsync(out.fileno())
    try:
        snap = verify_block_log(part, TrustAnchor.from_genesis(genesis))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    return Snapshot(snap[0], snap[1], snap[2], size)


def verify_block_log(path: Path, anchor: TrustAnchor) -> tuple[int, int, int]:
    """(height, stream position, attestations at the head) of a block log that links from the
    anchor's genesis to a quorum checkpoint; raises ``VerificationError`` otherwise."""
    log = BlockLog(path)  # our own downloaded copy (closing it checkpoints and removes its -wal and -shm)
    try:
        genesis = log.genesis()
        if genesis is None or genesis.hash() != anchor.genesis_hash:
            raise VerificationError("the snapshot is of another chain: its genesis is not the trust anchor")
        height = log.height()
        if height < 0:
            raise VerificationError("the snapshot holds no blocks")
        prev = anchor.genesis_hash.hex()
        for i, block in enumerate(log.blocks(0, height)):
            h = block.header
            if h.height != i or h.prev != prev or block.hash != h.hash() or h.chain != anchor.chain:
                raise VerificationError(f"the snapshot's block {i} does not link to block {i - 1}")
            prev = block.hash.hex()
        last_error = None
        for h in range(height, max(-1, height - 1000), -1):  # the newest blocks may still await attestations
            checkpoint = log.checkpoint(h)
            assert checkpoint is not None
            try:
                verify_checkpoint(checkpoint, anchor)
                return height, log.stream_seq(), len(checkpoint.attestations)
            except VerificationError as exc:
                last_error = exc
        raise VerificationError(f"no quorum checkpoint among the snapshot's newest blocks ({last_error})")
    finally:
        log.close()
