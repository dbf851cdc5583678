"""Cached benchmark data sets: a chain holding a whole fleet, built by feeding signed
transactions straight into an in-process block committer (real execution, real blocks, fsynced)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from ..keystore import KeyStore
from ..modules import default_registry
from ..node.committer import BlockCommitter
from ..node.init import OrgSpec, init_chain
from ..node.node import find_node_key, load_genesis
from .fleet import ORGS, TxFactory, fleet_keys, signed_lives
from .harness import BlockFeeder

CHAIN = "fleet-bench"


def default_cache() -> Path:
    return Path.home() / ".cache" / "blokauto" / "bench"


def build_fleet(path: Path, *, vehicles: int, mean_events: int = 1, block_txs: int = 2_000,
                quiet: bool = False) -> dict[str, Any]:
    """The data folder at ``path`` with ``vehicles`` vehicles (vehicles 0-9 with 200 history
    entries, 10-19 with 100); reused when it already matches."""
    params = {"vehicles": vehicles, "mean_events": mean_events, "format": 2}
    marker = path / "dataset.json"
    if marker.exists():
        info = msgspec.json.decode(marker.read_bytes())
        if info.get("params") == params:
            return info
    shutil.rmtree(path, ignore_errors=True)
    genesis = init_chain(path, chain=CHAIN, orgs=[OrgSpec.parse(o) for o in ORGS], quorum=1, node_orgs=1)
    registry = default_registry()
    committer = BlockCommitter(path, registry, find_node_key(path, genesis), genesis=genesis, state_writer_process=True)
    committer.recover()
    keys = fleet_keys(KeyStore(path / "keys").load)
    feeder = BlockFeeder(committer, registry.codec, block_txs)
    t0 = time.perf_counter()
    try:
        feeder.commit([TxFactory(CHAIN, keys).assign_wmi()])
        done = 0
        for raws in signed_lives(CHAIN, keys, range(vehicles), mean_events):
            feeder.commit(raws)
            done = min(vehicles, done + 1_000)
            if not quiet:
                txs = feeder.txs
                rate = txs / (time.perf_counter() - t0)
                print(f"\rbuilding data set: {done:,}/{vehicles:,} vehicles, {txs:,} txs ({rate:,.0f} tx/s)",
                      end="", file=sys.stderr, flush=True)
        committer.state.flush()
        height = committer.head.height if committer.head else -1
    finally:
        committer.close()
    if not quiet:
        print(file=sys.stderr)
    info = {"params": params, "txs": feeder.txs, "failed": feeder.failed, "height": height,
            "build_s": round(time.perf_counter() - t0, 1)}
    marker.write_bytes(msgspec.json.encode(info))
    return info


def db_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.db*"))


__all__ = ["build_fleet", "db_bytes", "default_cache", "load_genesis"]
