"""``blokauto bench history``: vehicle history queries and lifecycle throughput at fleet scale.

A cached data set of N vehicles (birth, two sales and a skewed mix of telematics readings,
services, inspections and accidents; ten vehicles with 200 entries) is served by a real node
process. The bench measures, in one run: the latency of the history query of a 200-entry vehicle
over HTTP, committed lifecycle transactions per second with the raw verification limit of the
same transactions, the node's peak resident memory, and the database size per vehicle.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..core import crypto
from ..core.encoding import canonical
from ..keystore import KeyStore
from .dataset import CHAIN, build_fleet, db_bytes, default_cache
from .fleet import TxFactory, fleet_keys, vin_of
from .harness import NodeProcess, RssSampler, raw_verify_limit
from .throughput import BATCH, _submit_all

LONG = 10  # vehicles 0..9 carry 200 history entries each


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def lifecycle_txs(data: Path, vehicles: int, n: int, seed: int = 7) -> list[Any]:
    """``n`` new lifecycle transactions on random existing vehicles (readings above any on record)."""
    f = TxFactory(CHAIN, fleet_keys(KeyStore(data / "keys").load))
    rng = random.Random(seed)
    out = []
    for j in range(n):
        i = rng.randrange(vehicles)
        out.append(f.event(i, 1_000_000 + j, km=500_000 + j))
    return out


def run(*, vehicles: int = 1_000_000, queries: int = 300, txs: int = 50_000, cache: Path | None = None,
        workers: int | None = None) -> dict[str, Any]:
    data = (cache or default_cache()) / f"fleet-{vehicles}"
    info = build_fleet(data, vehicles=vehicles)
    raws = lifecycle_txs(data, vehicles, txs)
    decoded = [_decode(r) for r in raws]
    raw = raw_verify_limit([t for t, _ in decoded], [i for _, i in decoded], workers)
    bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
    node = NodeProcess(data, workers=workers)
    try:
        node.wait_ready(timeout=600)
        sampler = RssSampler(node.pid)
        with httpx.Client(base_url=node.url, timeout=30) as http:
            # warm-up, then timed history queries of 200-entry vehicles
            for i in range(min(LONG, vehicles)):
                http.get("/v1/q/vehicles/history", params={"vin": vin_of(i), "limit": 200})
            latencies = []
            for q in range(queries):
                t = time.perf_counter()
                r = http.get("/v1/q/vehicles/history", params={"vin": vin_of(q % min(LONG, vehicles)), "limit": 200})
                latencies.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["result"]["entries"]) >= 200
            start = http.get("/v1/status").json()["committed_txs"]
            errors: list[str] = []
            t0 = time.perf_counter()
            sender = threading.Thread(target=_submit_all, args=(node.url, bodies, errors))
            sender.start()
            committed = 0
            while committed < txs:
                time.sleep(0.1)
                st = http.get("/v1/status").json()
                committed = st["committed_txs"] - start
                if not st["healthy"] or (not sender.is_alive() and committed + len(errors) >= txs):
                    break
                print(f"\r{committed}/{txs} lifecycle txs committed", end="", file=sys.stderr, flush=True)
            elapsed = time.perf_counter() - t0
            sender.join()
            print(file=sys.stderr)
        peak = sampler.stop()
    finally:
        node.stop()
    tx_per_s = committed / elapsed
    return {
        "bench": "history",
        "vehicles": vehicles,
        "dataset_txs": info["txs"],
        "dataset_build_s": info["build_s"],
        "history_entries": 200,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "queries": queries,
        "tx_per_s": round(tx_per_s),
        "lifecycle_txs": committed,
        **raw,
        "ratio_to_raw": round(tx_per_s / raw["raw_limit_tx_per_s"], 3),
        "peak_rss_mb": round(peak / 2**20, 1),
        "node_main_cpu_us_per_tx": round(sampler.cpu[0] / max(1, committed) * 1e6),
        "db_bytes_per_vehicle": round(db_bytes(data) / vehicles),
        "refused": len(errors),
        "first_errors": errors[:3],
    }


def _decode(raw: bytes) -> tuple[Any, bytes]:
    from ..modules import default_registry

    tx = default_registry().codec.decode(raw)
    return tx, crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body))
