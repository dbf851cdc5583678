"""``blokauto bench history``: vehicle history queries and lifecycle throughput at fleet scale.

A cached data set of N vehicles (birth, two sales and a skewed mix of telematics readings,
services, inspections and accidents; ten vehicles with 200 entries) is served by a real node
process. The bench measures, in one run: the latency of the history query of a 200-entry vehicle
over HTTP, and of vehicles drawn from the whole fleet (cold reads), committed lifecycle
transactions per second (successful receipts only) with the raw verification limit of the same
transactions, the node's peak resident memory, and the database size per vehicle. Requests are
signed with the chain's node key (a node key reads everything: no read policy is evaluated; see
``bench api`` for reads as a holder and a consented organisation).

The node runs on a copy of the cached data set, so a run never changes what the next one measures.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..core import crypto
from ..core.encoding import canonical
from ..keystore import KeyStore
from .dataset import CHAIN, build_fleet, db_bytes, default_cache
from .fleet import TxFactory, fleet_keys, vin_of
from .harness import NodeProcess, RssSampler, node_key, raw_verify_limit, signed_client
from .throughput import BATCH, _failed_receipts, _submit_all

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
    cached = (cache or default_cache()) / f"fleet-{vehicles}"
    info = build_fleet(cached, vehicles=vehicles)
    data = cached.with_name(f"{cached.name}-run")
    shutil.rmtree(data, ignore_errors=True)
    info = {**info, "bytes": db_bytes(cached)}
    print(f"copying the data set ({info['bytes'] / 2**20:,.0f} MiB) so this run leaves it as it was...",
          file=sys.stderr, flush=True)
    shutil.copytree(cached, data)
    try:
        return _run_on(data, info, vehicles=vehicles, queries=queries, txs=txs, workers=workers)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _run_on(data: Path, info: dict[str, Any], *, vehicles: int, queries: int, txs: int,
            workers: int | None) -> dict[str, Any]:
    raws = lifecycle_txs(data, vehicles, txs)
    decoded = [_decode(r) for r in raws]
    raw = raw_verify_limit([t for t, _ in decoded], [i for _, i in decoded], workers)
    bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
    node = NodeProcess(data, workers=workers)
    key = node_key(data)
    try:
        node.wait_ready(timeout=600)
        sampler = RssSampler(node.pid)
        with signed_client(node.url, key) as http:
            # warm-up, then timed history queries of 200-entry vehicles
            for i in range(min(LONG, vehicles)):
                http.get("/v1/q/vehicles/history", params={"vin": vin_of(i), "limit": 200})
            latencies = []
            for q in range(queries):
                t = time.perf_counter()
                r = http.get("/v1/q/vehicles/history", params={"vin": vin_of(q % min(LONG, vehicles)), "limit": 200})
                latencies.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["result"]["entries"]) >= 200
            # the same query over vehicles drawn from the whole fleet (each read once: cold)
            rng = random.Random(11)
            fleet_latencies = []
            for q in range(queries):
                t = time.perf_counter()
                r = http.get("/v1/q/vehicles/history", params={"vin": vin_of(rng.randrange(vehicles)), "limit": 200})
                fleet_latencies.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and r.json()["result"]["entries"], r.text
            base = http.get("/v1/status").json()
            start = base["committed_txs"]
            errors: list[str] = []
            t0 = time.perf_counter()
            sender = threading.Thread(target=_submit_all, args=(node.url, key, bodies, errors))
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
            failed = _failed_receipts(http, base["height"] + 1, http.get("/v1/status").json()["height"])
    finally:
        node.stop()
    tx_per_s = (committed - failed) / elapsed
    return {
        "bench": "history",
        "vehicles": vehicles,
        "dataset_txs": info["txs"],
        "dataset_build_s": info["build_s"],
        "history_entries": 200,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "fleet_p50_ms": round(statistics.median(fleet_latencies), 2),
        "fleet_p99_ms": round(_percentile(fleet_latencies, 0.99), 2),
        "queries": queries,
        "tx_per_s": round(tx_per_s),
        "lifecycle_txs": committed,
        "failed": failed,
        **raw,
        "ratio_to_raw": round(tx_per_s / raw["raw_limit_tx_per_s"], 3),
        "peak_rss_mb": round(peak / 2**20, 1),
        "node_main_cpu_us_per_tx": round(sampler.cpu[0] / max(1, committed) * 1e6),
        "node_writer_cpu_us_per_tx": round(sampler.cpu[2] / max(1, committed) * 1e6),
        "db_bytes_per_vehicle": round(info["bytes"] / vehicles),  # the data set as built, before this run
        "refused": len(errors),
        "first_errors": errors[:3],
    }


def _decode(raw: bytes) -> tuple[Any, bytes]:
    from ..modules import default_registry

    tx = default_registry().codec.decode(raw)
    return tx, crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body))
