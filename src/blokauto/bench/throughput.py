"""``blokauto bench throughput``: committed transactions per second on one node, end to end.

Transactions are generated and signed before the clock starts. A real node process
(``blokauto node start``) takes them over HTTP in batches; every signature is verified in its
worker processes and every block is fsynced. The raw limit is PyNaCl verification of the very
same signatures on all cores, measured in the same run, so ``ratio_to_raw`` holds on a noisy
machine. Requests are signed with the node key of the bench chain (one request signature per
batch of ``BATCH`` transactions).
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
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import Tx, make_body, sign
from ..keystore import KeyStore
from ..node.init import OrgSpec, init_chain
from .harness import NodeProcess, RssSampler, node_key, post_batch, raw_verify_limit, signed_client

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


def _submit_all(url: str, key: KeyPair, bodies: list[bytes], errors: list[str],
                ack_ms: list[float] | None = None) -> None:
    """POST every batch, ``IN_FLIGHT`` at a time, each request signed with ``key``."""
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker() -> None:
        with signed_client(url, key, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop(0)
                post_batch(http, body, errors, ack_ms)

    threads = [threading.Thread(target=worker) for _ in range(IN_FLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Followed:
    """What ``submit_and_follow`` saw: (seconds, committed) samples, the node's last status, its peak
    RSS (MB), how many transactions it committed, the submissions refused, and the CPU seconds of the
    node's main process, verifier workers and state writer."""

    def __init__(self, progress: list[tuple[float, int]], final: dict[str, Any], peak_mb: float, committed: int,
                 errors: list[str], cpu: tuple[float, float, float]) -> None:
        self.progress, self.final, self.peak_mb, self.committed, self.errors = progress, final, peak_mb, committed, errors
        self.cpu = cpu

    @property
    def elapsed(self) -> float:
        return self.progress[-1][0]


def submit_and_follow(http: httpx.Client, node: NodeProcess, key: KeyPair, bodies: list[bytes], total: int,
                      base: dict[str, Any], label: str) -> Followed:
    """Post ``bodies`` from a thread (``_submit_all``) and follow the node's committed count (from
    ``base``, its status before) until ``total`` are in, it is unhealthy, or every failure is counted,
    printing ``label: n/total committed``."""
    sampler = RssSampler(node.pid)
    errors: list[str] = []
    progress: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    sender = threading.Thread(target=_submit_all, args=(node.url, key, bodies, errors))
    sender.start()
    committed = 0
    while committed < total:
        time.sleep(0.1)
        st = http.get("/v1/status").json()
        committed = st["committed_txs"] - base["committed_txs"]
        progress.append((time.perf_counter() - t0, committed))
        if not st["healthy"] or (not sender.is_alive() and errors and committed + len(errors) >= total):
            break
        print(f"\r{label}: {committed:,}/{total:,} committed", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    final = http.get("/v1/status").json()
    sender.join()
    peak = sampler.stop()
    return Followed(progress, final, peak, final["committed_txs"] - base["committed_txs"], errors, sampler.cpu)


def run(*, txs: int = 200_000, workload: str = "vehicles", workers: int | None = None, block_txs: int = 2000,
        keep: Path | None = None, compare_journal: bool = True) -> dict[str, Any]:
    """Commit ``txs`` transactions on a node; with ``compare_journal``, the same transactions again on a
    fresh copy of the chain whose node answers ids before the intake journal's fsync."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    orgs, generate = WORKLOADS[workload]
    data = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-"))
    pristine = Path(tempfile.mkdtemp(prefix="blokauto-bench-pristine-")) / "data"
    try:
        genesis = init_chain(data, chain="bench", orgs=[OrgSpec.parse(o) for o in orgs], quorum=1, node_orgs=1)
        shutil.copytree(data, pristine)  # the same chain and keys for the second run
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
        setup_bodies = [b"[" + b",".join(setup[i:i + BATCH]) + b"]" for i in range(0, len(setup), BATCH)]
        result = {"bench": "throughput", "workload": workload, "txs": txs,
                  **_measure(data, setup_bodies, len(setup), bodies, txs, workers, block_txs, durable_acks=True)}
        result.update(raw)
        result["ratio_to_raw"] = round(result["tx_per_s"] / raw["raw_limit_tx_per_s"], 3)
        result.update(tx_bytes=tx_bytes, generate_s=round(gen_s, 1))
        if compare_journal:
            other = data.with_name(data.name + "-unsafe-acks")
            shutil.copytree(pristine, other)
            try:
                unsafe = _measure(other, setup_bodies, len(setup), bodies, txs, workers, block_txs, durable_acks=False)
            finally:
                shutil.rmtree(other, ignore_errors=True)
            result["without_journal"] = {k: unsafe[k] for k in ("tx_per_s", "ack_p50_ms", "ack_p99_ms", "committed",
                                                                  "failed", "refused")}
            result["journal_cost"] = round(1 - result["tx_per_s"] / max(1, unsafe["tx_per_s"]), 3)
        return result
    finally:
        shutil.rmtree(pristine.parent, ignore_errors=True)
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)


def _measure(data: Path, setup_bodies: list[bytes], setup_n: int, bodies: list[bytes], txs: int,
             workers: int | None, block_txs: int, *, durable_acks: bool) -> dict[str, Any]:
    """One node process: the set-up (not timed), then every batch; rates count successful receipts."""
    extra = () if durable_acks else ("--unsafe-acks-before-journal",)
    node = NodeProcess(data, workers=workers, block_txs=block_txs, extra=extra)
    key = node_key(data)
    try:
        node.wait_ready()
        if setup_bodies:  # not timed: the state the workload acts on, committed in order (one batch at a time)
            setup_errors: list[str] = []
            with signed_client(node.url, key, timeout=120) as http:
                for body in setup_bodies:
                    post_batch(http, body, setup_errors)
            if setup_errors:
                raise RuntimeError(f"the set-up transactions were refused: {setup_errors[:3]}")
            _wait_committed(node.url, setup_n)
        with signed_client(node.url, key) as http:
            base = http.get("/v1/status").json()
        sampler = RssSampler(node.pid)
        errors: list[str] = []
        ack_ms: list[float] = []
        samples: list[tuple[float, int]] = []
        t0 = time.perf_counter()
        sender = threading.Thread(target=_submit_all, args=(node.url, key, bodies, errors, ack_ms))
        sender.start()
        with signed_client(node.url, key) as http:
            committed = 0
            while committed < txs:
                time.sleep(0.1)
                st = http.get("/v1/status").json()
                committed = st["committed_txs"] - base["committed_txs"]
                samples.append((time.perf_counter() - t0, committed))
                if not st["healthy"] or (not sender.is_alive() and errors and committed + len(errors) >= txs):
                    break
                print(f"\r{committed}/{txs} committed", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            final = http.get("/v1/status").json()
            sender.join()
            elapsed = samples[-1][0]
            peak = sampler.stop()
            failed = _failed_receipts(http, base["height"] + 1, final["height"])
    finally:
        node.stop()
    done = final["committed_txs"] - base["committed_txs"]
    ok = done - failed
    acks = sorted(ack_ms) or [0.0]
    out = {
        "committed": done,
        "failed": failed,
        "tx_per_s": round(ok / elapsed),
        "start_tx_per_s": _rate(samples, 0.0, 0.2, txs),
        "end_tx_per_s": _rate(samples, 0.8, 1.0, txs),
        "blocks": final["height"] - base["height"],
        "peak_rss_mb": round(peak / 2**20, 1),
        "node_main_cpu_us_per_tx": round(sampler.cpu[0] / max(1, done) * 1e6),
        "node_workers_cpu_us_per_tx": round(sampler.cpu[1] / max(1, done) * 1e6),
        "node_writer_cpu_us_per_tx": round(sampler.cpu[2] / max(1, done) * 1e6),
        "ack_p50_ms": round(acks[len(acks) // 2], 1),
        "ack_p99_ms": round(acks[min(len(acks) - 1, int(len(acks) * 0.99))], 1),
        "ack_batch": BATCH,
        "elapsed_s": round(elapsed, 2),
        "refused": len(errors),
        "first_errors": errors[:3],
    }
    out["end_vs_start"] = round(out["end_tx_per_s"] / max(1, out["start_tx_per_s"]), 3)
    return out


def _failed_receipts(http: httpx.Client, start: int, end: int) -> int:
    """Transactions of blocks ``start``..``end`` whose receipt is a failure (they count as committed, not done)."""
    failed = 0
    for h in range(start, end + 1):
        block = http.get(f"/v1/blocks/{h}", params={"full": "true"}).json()
        failed += sum(1 for r in block["receipts"] if not r["ok"])
    return failed


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
