"""``blokauto bench throughput``: committed transactions per second on one node, end to end.

Transactions are generated and signed before the clock starts. A real node process
(``blokauto node start``) takes them over HTTP in batches; every signature is verified in its
worker processes and every block is fsynced. The raw limit is PyNaCl verification of the very
same signatures on all cores, measured in the same run, so ``ratio_to_raw`` holds on a noisy
machine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from ..core import crypto
from ..core.encoding import canonical
from ..core.tx import Tx, make_body, sign
from ..keystore import KeyStore
from ..node.init import OrgSpec, init_chain
from .harness import NodeProcess, RssSampler, post_batch, raw_verify_limit

BATCH = 1000
IN_FLIGHT = 4


def fleet_orgs() -> list[str]:
    from .fleet import ORGS

    return list(ORGS)


def _members_workload(data: Path, genesis: Any, n: int) -> tuple[list[bytes], list[Tx[Any]]]:
    """Onboarding: an admin registers ``n`` new member keys, each co-signing (two signatures)."""
    from ..modules.governance.messages import AddMember

    admin = KeyStore(data / "keys").load("fleet-oem-admin")
    expires = time.time_ns() // 1_000_000 + 50 * 60_000
    out = []
    for i in range(n):
        member = crypto.KeyPair(crypto.sha256(b"bench-member-%d" % i))
        body = make_body(genesis.chain, admin.did, AddMember(member=member.did, roles=["manufacturer"]),
                         nonce=f"{i:032x}", expires=expires)
        out.append(sign(body, admin, member))
    return [], out


def _vehicles_workload(data: Path, genesis: Any, n: int) -> tuple[list[bytes], list[Tx[Any]]]:
    """Vehicle lifecycle: ``n`` single-signature events (telematics odometer readings signed by
    each car's own key, services, inspections, accidents) on a fleet registered beforehand."""
    import random

    from ..modules.vehicles import messages as vm
    from .fleet import TxFactory, device_key, fleet_keys, vin_of

    fleet = max(1_000, n // 10)
    f = TxFactory(genesis.chain, fleet_keys(KeyStore(data / "keys").load))
    setup = [f.assign_wmi()] + [f.birth(i) for i in range(fleet)]
    rng = random.Random(11)
    k = f.k
    timed = []
    for j in range(n):
        i = rng.randrange(fleet)
        vin, km, nonce = vin_of(i), 10_000 + j, f.nonce(i, 100 + j)
        kind = j % 20
        if kind < 12:
            timed.append(f.signed(device_key(i), vm.RecordOdometer(vin=vin, value=km), nonce=nonce))
        elif kind < 16:
            timed.append(f.signed(k.shop, vm.RecordService(vin=vin, odometer=km, items=["oil"]), nonce=nonce))
        elif kind < 19:
            timed.append(f.signed(k.registry, vm.RecordInspection(vin=vin, odometer=km, result="pass"), nonce=nonce))
        else:
            timed.append(f.signed(k.insurer, vm.RecordAccident(vin=vin, date="2024-01-02", severity="minor",
                                                               impact_areas=["rear"]), nonce=nonce))
    return setup, timed


WORKLOADS: dict[str, tuple[list[str], Callable[[Path, Any, int], tuple[list[bytes], list[Tx[Any]]]]]] = {
    "vehicles": (fleet_orgs(), _vehicles_workload),
    "members": (["fleet-oem:manufacturer:Fleet OEM"], _members_workload),
}


def _submit_all(url: str, bodies: list[bytes], errors: list[str]) -> None:
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop(0)
                post_batch(http, body, errors)

    threads = [threading.Thread(target=worker) for _ in range(IN_FLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(*, txs: int = 200_000, workload: str = "vehicles", workers: int | None = None, block_txs: int = 2000,
        keep: Path | None = None) -> dict[str, Any]:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    orgs, generate = WORKLOADS[workload]
    data = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-"))
    try:
        genesis = init_chain(data, chain="bench", orgs=[OrgSpec.parse(o) for o in orgs], quorum=1, node_orgs=1)
        t = time.perf_counter()
        setup, signed = generate(data, genesis, txs)
        raws = [canonical(tx) for tx in signed]
        ids = [crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)) for tx in signed]
        gen_s = time.perf_counter() - t
        raw = raw_verify_limit(signed, ids, workers)
        del signed
        bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
        tx_bytes = sum(len(r) for r in raws) // len(raws)
        del raws

        node = NodeProcess(data, workers=workers, block_txs=block_txs)
        try:
            node.wait_ready()
            if setup:  # not timed: the state the workload acts on
                _submit_all(node.url, [b"[" + b",".join(setup[i:i + BATCH]) + b"]"
                                       for i in range(0, len(setup), BATCH)], [])
                _wait_committed(node.url, len(setup))
            sampler = RssSampler(node.pid)
            errors: list[str] = []
            samples: list[tuple[float, int]] = []
            t0 = time.perf_counter()
            sender = threading.Thread(target=_submit_all, args=(node.url, bodies, errors))
            sender.start()
            with httpx.Client(base_url=node.url, timeout=30) as http:
                base = http.get("/v1/status").json()["committed_txs"]
                committed = 0
                while committed < txs:
                    time.sleep(0.1)
                    st = http.get("/v1/status").json()
                    committed = st["committed_txs"] - base
                    samples.append((time.perf_counter() - t0, committed))
                    if not st["healthy"] or (not sender.is_alive() and errors and committed + len(errors) >= txs):
                        break
                    print(f"\r{committed}/{txs} committed", end="", file=sys.stderr, flush=True)
                print(file=sys.stderr)
                final = http.get("/v1/status").json()
                final["committed_txs"] -= base
            sender.join()
            elapsed = samples[-1][0]
            peak = sampler.stop()
        finally:
            node.stop()
        result = {
            "bench": "throughput",
            "workload": workload,
            "txs": txs,
            "committed": final["committed_txs"],
            "tx_per_s": round(final["committed_txs"] / elapsed),
            **raw,
            "ratio_to_raw": round(final["committed_txs"] / elapsed / raw["raw_limit_tx_per_s"], 3),
            "start_tx_per_s": _rate(samples, 0.0, 0.2, txs),
            "end_tx_per_s": _rate(samples, 0.8, 1.0, txs),
            "blocks": final["height"],
            "peak_rss_mb": round(peak / 2**20, 1),
            "node_main_cpu_us_per_tx": round(sampler.cpu[0] / final["committed_txs"] * 1e6),
            "node_workers_cpu_us_per_tx": round(sampler.cpu[1] / final["committed_txs"] * 1e6),
            "tx_bytes": tx_bytes,
            "generate_s": round(gen_s, 1),
            "elapsed_s": round(elapsed, 2),
            "refused": len(errors),
            "first_errors": errors[:3],
        }
        result["end_vs_start"] = round(result["end_tx_per_s"] / max(1, result["start_tx_per_s"]), 3)
        return result
    finally:
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)


def _wait_committed(url: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as http:
        while http.get("/v1/status").json()["committed_txs"] < n:
            if time.monotonic() > deadline:
                raise TimeoutError("set-up transactions were not committed")
            time.sleep(0.2)


def _rate(samples: list[tuple[float, int]], lo: float, hi: float, total: int) -> int:
    """Committed tx/s between the moments ``lo`` and ``hi`` fractions of the work were committed."""
    a = next((s for s in samples if s[1] >= lo * total), samples[0])
    b = next((s for s in samples if s[1] >= hi * total), samples[-1])
    if b[0] <= a[0]:
        return 0
    return round((b[1] - a[1]) / (b[0] - a[0]))
