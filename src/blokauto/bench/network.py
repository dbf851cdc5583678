"""``blokauto bench network``: a consortium on NATS JetStream vs one solo node, in the same run.

1. The same signed transactions (member registrations, two signatures each) go first to a solo
   node (``single_node_tx_per_s``: the ceiling on this machine), then to a local network of
   ``orgs`` nodes and 3 NATS servers, spread over every node's API.
2. ``tx_per_s`` is the committed throughput of the slowest node at saturation (every node
   executes every transaction). Then, at half that rate, transactions are sent one by one:
   ``p50_ms``/``p99_ms`` run from submitting each to the quorum checkpoint of its block (a
   watcher reads blocks in order; the API serves a block's attestations once a quorum attested).
3. Under a light load, the ordering stream's leader is killed: ``failover_stall_s`` is the longest
   time without a committed block from the kill until blocks flow again.

Every request is signed with the registering admin's member key (RFC 9421; one request signature
per batch, and one per transaction while pacing).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..core import crypto
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import make_body, sign
from ..modules.governance.messages import AddMember
from ..node.init import init_chain
from ..node.network import (network_down, network_up, org_specs, start_server, stop_pid, stream_leader)
from .harness import NodeProcess, RssSampler, post_batch, raw_verify_limit, signed_client

BATCH = 500
CHAIN = "bench-net"


def _key(label: str) -> KeyPair:
    return KeyPair(crypto.sha256(b"blokauto-bench-network/" + label.encode()))


def _signed(admin: KeyPair, start: int, n: int) -> tuple[list[bytes], list[bytes], list[Any]]:
    expires = time.time_ns() // 1_000_000 + 50 * 60_000
    raws, ids, txs = [], [], []
    for i in range(start, start + n):
        member = _key(f"member-{i}")
        body = make_body(CHAIN, admin.did, AddMember(member=member.did, roles=["regulator"]), nonce=f"{i:032x}",
                         expires=expires)
        tx = sign(body, admin, member)
        txs.append(tx)
        raws.append(canonical(tx))
        ids.append(crypto.tagged_hash(crypto.TAG_TX_ID, canonical(body)))
    return raws, ids, txs


def _batches(raws: list[bytes]) -> list[bytes]:
    return [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]


def _committed(url: str) -> int:
    try:
        return httpx.get(url + "/v1/status", timeout=5).json()["committed_txs"]
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


def _wait_all(urls: list[str], target: int, timeout: float, label: str) -> dict[str, float]:
    """Seconds (perf_counter) at which each node had committed ``target`` transactions."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(urls):
        counts = [_committed(u) for u in urls]
        for u, c in zip(urls, counts):
            if u not in done and c >= target:
                done[u] = time.perf_counter()
        print(f"\r{label}: {min(counts)}/{target} committed on every node", end="", file=sys.stderr, flush=True)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: nodes reached {counts} of {target} within {timeout:g} s")
        time.sleep(0.1)
    print(file=sys.stderr)
    return done


class BlockWatcher(threading.Thread):
    """Reads blocks of one node in order; notes when each is served with a quorum checkpoint."""

    def __init__(self, url: str, key: KeyPair, quorum: int, start: int) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.quorum, self.next = url, key, quorum, start
        self.at: dict[int, float] = {}  # height -> perf_counter when its quorum checkpoint was served
        self.tx_height: dict[str, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        with signed_client(self.url, self.key) as http:
            while not self.halt.is_set():
                try:
                    r = http.get(f"/v1/blocks/{self.next}")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if r.status_code != 200:
                    time.sleep(0.005)
                    continue
                b = r.json()
                if len(b["attestations"]) < self.quorum:
                    time.sleep(0.005)
                    continue
                self.at[self.next] = time.perf_counter()
                for txid in b["tx_ids"]:
                    self.tx_height[txid] = self.next
                self.next += 1


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def _single_node(base: Path, key: KeyPair, bodies: list[bytes], n: int) -> float:
    data = base / "solo"
    init_chain(data, chain=CHAIN, orgs=org_specs(4), quorum=1, node_orgs=1, key_factory=_key)
    node = NodeProcess(data)
    try:
        node.wait_ready()
        start = _committed(node.url)
        t0 = time.perf_counter()
        errors: list[str] = []
        threads = [threading.Thread(target=_send_share, args=([node.url], key, bodies, k, 4, errors)) for k in range(4)]
        for t in threads:
            t.start()
        done = _wait_all([node.url], start + n, 600, "single node")
        for t in threads:
            t.join()
        return n / (done[node.url] - t0)
    finally:
        node.stop()


def _send_share(urls: list[str], key: KeyPair, bodies: list[bytes], k: int, step: int, errors: list[str],
                sent_at: dict[int, float] | None = None) -> None:
    """Send bodies k, k+step, ... to the nodes in turn (requests signed with ``key``)."""
    clients = [signed_client(u, key, timeout=120) for u in urls]
    try:
        for j in range(k, len(bodies), step):
            if sent_at is not None:
                sent_at[j] = time.perf_counter()
            post_batch(clients[j % len(clients)], bodies[j], errors)
    finally:
        for c in clients:
            c.close()


def run(*, orgs: int = 4, txs: int = 20_000, workers: int | None = 1, failover: bool = True,
        keep: Path | None = None) -> dict[str, Any]:
    base = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-net-"))
    state = None
    try:
        admin = _key("kba-admin")
        raws, ids, signed = _signed(admin, 0, txs)
        raw = raw_verify_limit(signed, ids)
        del signed
        bodies = _batches(raws)
        single = _single_node(base, admin, bodies, txs)

        state = network_up(base / "net", orgs=orgs, chain=CHAIN, workers=workers, key_factory=_key)
        urls = [n.url for n in state.nodes]
        quorum = httpx.get(urls[0] + "/v1/status").json()["quorum"]
        samplers = {n.org: RssSampler(n.pid) for n in state.nodes}
        watcher = BlockWatcher(urls[0], admin, quorum, start=1)
        watcher.start()
        errors: list[str] = []
        sent_at: dict[int, float] = {}
        t0 = time.perf_counter()
        senders = [threading.Thread(target=_send_share, args=(urls, admin, bodies, k, 2 * len(urls), errors, sent_at))
                   for k in range(2 * len(urls))]
        for t in senders:
            t.start()
        done = _wait_all(urls, txs, 900, "network")
        for t in senders:
            t.join()
        per_node = {n.org: round(txs / (done[n.url] - t0)) for n in state.nodes}
        latencies = _paced_latency(urls, admin, watcher, start=txs, rate=max(50, min(per_node.values()) // 2))
        stall = _failover_stall(state, urls, admin, watcher, 2 * txs) if failover else None
        watcher.halt.set()
        peaks = {org: round(s.stop() / 2**20, 1) for org, s in samplers.items()}
        slowest = min(per_node.values())
        return {
            "bench": "network",
            "orgs": orgs,
            "nats_servers": len(state.servers),
            "quorum": quorum,
            "txs": txs,
            "tx_per_s": slowest,
            "per_node_tx_per_s": per_node,
            "single_node_tx_per_s": round(single),
            "ratio_to_single": round(slowest / single, 3),
            **raw,
            "latency_offered_tx_per_s": max(50, slowest // 2),
            "p50_ms": round(_percentile(latencies, 0.5), 1),
            "p99_ms": round(_percentile(latencies, 0.99), 1),
            "latency_samples": len(latencies),
            "failover_stall_s": stall,
            "peak_rss_mb": peaks,
            "max_peak_rss_mb": max(peaks.values()),
            "workers_per_node": workers,
            "cores": os.cpu_count(),
            "refused": len(errors),
            "first_errors": errors[:3],
        }
    finally:
        if state is not None:
            network_down(Path(state.base))
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def _paced_latency(urls: list[str], admin: KeyPair, watcher: BlockWatcher, *, start: int, rate: int,
                   seconds: float = 10.0) -> list[float]:
    """Submit one transaction at a time at ``rate`` tx/s (spread over the nodes) and time each from
    its submission to the quorum checkpoint of its block."""
    n = int(rate * seconds)
    raws, ids, _ = _signed(admin, start, n)
    sent: dict[str, float] = {}
    threads = 4
    interval = threads / rate

    def send(k: int) -> None:
        clients = [signed_client(u, admin, timeout=60) for u in urls]
        t = time.perf_counter()
        for j in range(k, n, threads):
            sent[ids[j].hex()] = time.perf_counter()
            r = clients[j % len(clients)].post("/v1/txs", content=raws[j], headers={"content-type": "application/json"})
            if r.status_code not in (200, 202):
                sent.pop(ids[j].hex(), None)
            t += interval
            time.sleep(max(0.0, t - time.perf_counter()))
        for c in clients:
            c.close()

    workers = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    deadline = time.monotonic() + 60
    while any(i not in watcher.tx_height for i in sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [(watcher.at[watcher.tx_height[i]] - t) * 1000 for i, t in sent.items() if i in watcher.tx_height]


def _failover_stall(state: Any, urls: list[str], admin: KeyPair, watcher: BlockWatcher, start: int) -> float:
    """Kill the ordering stream's leader under a light load; the longest gap between blocks after it."""
    raws, _, _ = _signed(admin, start, 4_000)
    bodies = [b"[" + b",".join(raws[i:i + 20]) + b"]" for i in range(0, len(raws), 20)]
    halt = threading.Event()
    errors: list[str] = []

    def trickle() -> None:  # ~400 tx/s in batches of 20
        clients = [signed_client(u, admin, timeout=60) for u in urls]
        for j, body in enumerate(bodies):
            if halt.is_set():
                break
            post_batch(clients[j % len(clients)], body, errors)
            time.sleep(0.05)
        for c in clients:
            c.close()

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    time.sleep(2)
    leader = stream_leader(state)
    killed_at = time.perf_counter()
    os.kill(leader.pid, signal.SIGKILL)
    first = watcher.next
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # blocks flowing again: 10 blocks after the kill
        if watcher.next > first + 10:
            break
        time.sleep(0.05)
    times = sorted([killed_at] + [t for t in watcher.at.values() if t >= killed_at])
    stall = max((b - a for a, b in zip(times, times[1:])), default=60.0)
    halt.set()
    sender.join(30)
    stop_pid(leader.pid, timeout=1)
    start_server(state, leader)
    state.save()
    return round(stall, 3)
