"""Cached benchmark data sets: a chain holding a whole fleet, built by feeding signed
transactions straight into an in-process block committer (real execution, real blocks, fsynced)."""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import msgspec

from ..keystore import KeyStore
from ..modules import default_registry
from ..modules.vehicles.messages import RecordOdometer
from ..node.committer import BlockCommitter
from ..node.init import OrgSpec, init_chain
from ..node.node import find_node_key, load_genesis
from .fleet import ORGS, TxFactory, device_key, fleet_keys, signed_lives, vin_of
from .harness import BlockFeeder

CHAIN = "fleet-bench"


def default_cache() -> Path:
    return Path.home() / ".cache" / "blokauto" / "bench"


@contextmanager
def feeding(path: Path, genesis: Any, block_txs: int = 2_000) -> Iterator[BlockFeeder]:
    """A ``BlockFeeder`` committing straight into the data folder at ``path`` (an in-process block
    committer, recovered first); its state is flushed when the block ends without an error."""
    registry = default_registry()
    committer = BlockCommitter(path, registry, find_node_key(path, genesis), genesis=genesis, state_writer_process=True)
    try:
        committer.recover()
        feeder = BlockFeeder(committer, registry.codec, block_txs)
        yield feeder
        committer.state.flush()
    finally:
        committer.close()


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
    keys = fleet_keys(KeyStore(path / "keys").load)
    t0 = time.perf_counter()
    with feeding(path, genesis, block_txs) as feeder:
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
    head = feeder.committer.head
    height = head.height if head else -1
    if not quiet:
        print(file=sys.stderr)
    info = {"params": params, "txs": feeder.txs, "failed": feeder.failed, "height": height,
            "build_s": round(time.perf_counter() - t0, 1)}
    marker.write_bytes(msgspec.json.encode(info))
    return info


def add_readings(path: Path, i: int, n: int) -> int:
    """Commit ``n`` more odometer readings of fleet vehicle ``i`` (signed by its device key, each above
    any reading on record, so each is one more history entry) into the data folder at ``path``: a copy,
    never a cached data set. Returns the height of the last block."""
    genesis = load_genesis(path)
    assert genesis is not None, f"no genesis.json in {path}"
    f = TxFactory(CHAIN, fleet_keys(KeyStore(path / "keys").load))
    raws = [f.tx(device_key(i), RecordOdometer(vin=vin_of(i), value=400_000 + 10 * j), nonce=f.nonce(i, 2_000_000 + j))
            for j in range(n)]
    with feeding(path, genesis) as feeder:
        feeder.commit(raws)
    if feeder.failed:
        raise RuntimeError(f"{feeder.failed} of the {n} readings added to vehicle {i} failed: {feeder.first_errors}")
    head = feeder.committer.head
    return head.height if head else -1


def db_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.db*"))


__all__ = ["add_readings", "build_fleet", "db_bytes", "default_cache", "feeding", "load_genesis"]
