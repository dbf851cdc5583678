"""Shared benchmark plumbing: a node in its own process, signed clients, memory sampling, the raw
verify limit, Chromium driven by Playwright.

Every route of a node but the public ones answers only signed requests (RFC 9421, see
``blokauto.http_signatures``), so the benches talk to a node through ``signed_client`` with a key
the bench chain knows: the node key of its data folder (``node_key``), which reads everything,
or an admin member key the bench already holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import httpx
import psutil

from ..client import signed_http
from ..core import crypto
from ..core.crypto import KeyPair
from ..core.tx import signing_bytes


#: Debian's Chromium (never a downloaded one) and the switches the benches run it with (as tests/helpers/reports.py).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (a ``playwright.sync_api.Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank, as every bench reports p95 and p99)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ordered_pool_map(fn: Callable[[Any], Any], jobs: Iterable[Any], *, initializer: Callable[..., None] | None = None,
                     initargs: tuple[Any, ...] = (), workers: int | None = None, ahead: int = 4) -> Iterator[Any]:
    """``fn(job)`` for every job in a process pool, yielded in job order, at most ``ahead`` jobs in
    flight (data sets are signed in chunks while earlier chunks are committed)."""
    with ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs) as pool:
        window: deque = deque()
        for job in jobs:
            window.append(pool.submit(fn, job))
            if len(window) >= ahead:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


class BlockFeeder:
    """Signed transactions committed straight through a ``BlockCommitter`` in blocks of ``block_txs``
    (building a data set without the HTTP path); counts them and keeps the refusals' codes."""

    def __init__(self, committer: Any, codec: Any, block_txs: int) -> None:
        self.committer, self.codec, self.block_txs = committer, codec, block_txs
        self.txs = 0
        self.failed = 0
        self.first_errors: list[str] = []

    def commit(self, raws: list[bytes]) -> None:
        from ..core.encoding import canonical
        from ..core.tx import CheckedTx

        for s in range(0, len(raws), self.block_txs):
            batch = []
            for raw in raws[s:s + self.block_txs]:
                tx = self.codec.decode(raw)
                batch.append(CheckedTx(tx, crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)), raw))
            bad = [r for r in self.committer.produce(batch).receipts if not r.ok]
            self.failed += len(bad)
            self.first_errors.extend(f"{r.code}: {r.detail}" for r in bad[:max(0, 3 - len(self.first_errors))])
            self.txs += len(batch)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 60, log: Path | None = None) -> None:
    """Wait until the node ``proc`` runs answers at ``url``; raise if it exits first (with the end of
    ``log``) or does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = f": {log.read_text(errors='replace')[-2000:]}" if log is not None and log.exists() else ""
            raise RuntimeError(f"the node exited with {proc.returncode}{tail}")
        try:
            if httpx.get(url + "/v1/status", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the node did not start")


def node_key(data: Path) -> KeyPair:
    """The node key in the data folder ``data`` (a consortium node key reads everything)."""
    from ..node.node import find_node_key, load_genesis

    genesis = load_genesis(data)
    if genesis is None:
        raise FileNotFoundError(f"no genesis.json in {data}")
    return find_node_key(data, genesis)


def signed_client(url: str, key: KeyPair, timeout: float = 30) -> httpx.Client:
    """An httpx client for ``url`` that signs every request with ``key`` (the signing runs in the
    bench process, on the client's side of any timing)."""
    return signed_http(url, key, timeout=timeout)


class NodeProcess:
    """``blokauto node start`` as a child process on 127.0.0.1, stopped by PID."""

    def __init__(self, data: Path, *, workers: int | None = None, block_txs: int = 2000, block_ms: int = 50,
                 log: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--port", str(self.port),
               "--block-txs", str(block_txs), "--block-ms", str(block_ms)]
        if workers:
            cmd += ["--workers", str(workers)]
        cmd += list(extra)
        self._log = open(log or data / "node.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        wait_ready(self.proc, self.url, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class RssSampler:
    """Peak resident memory of a process and all its children, sampled every ``interval`` s,
    and the CPU seconds each used while sampling: the main process, its verifier workers (and any
    other child), and its state writer process."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.cpu_start = self._cpu()
        self.cpu = (0.0, 0.0, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def _cpu(self) -> tuple[float, float, float]:
        try:
            root = psutil.Process(self.pid)
            t = root.cpu_times()
            kids = writer = 0.0
            for c in root.children(recursive=True):
                used = sum(c.cpu_times()[:2])
                if "blokauto.store.layer_writer" in c.cmdline():
                    writer += used
                else:
                    kids += used
            return t.user + t.system, kids, writer
        except psutil.Error:
            return 0.0, 0.0, 0.0

    def cpu_so_far(self) -> tuple[float, float, float]:
        """CPU seconds used since sampling started: (main process, workers, state writer)."""
        now = self._cpu()
        return now[0] - self.cpu_start[0], now[1] - self.cpu_start[1], now[2] - self.cpu_start[2]

    def stop(self) -> int:
        now = self._cpu()
        self.cpu = (now[0] - self.cpu_start[0], now[1] - self.cpu_start[1], now[2] - self.cpu_start[2])
        self._stop.set()
        self._thread.join()
        return self.peak


def post_batch(http: httpx.Client, body: bytes, errors: list[str], ack_ms: list[float] | None = None) -> None:
    """POST one batch (a JSON array of transactions), waiting out 503s and dropped connections;
    every refusal (the whole batch's, or each refused transaction's) is added to ``errors``, and
    the time from sending to the answer with the ids to ``ack_ms``."""
    while True:
        try:
            t = time.perf_counter()
            r = http.post("/v1/txs/batch", content=body, headers={"content-type": "application/json"})
            if ack_ms is not None and r.status_code == 200:
                ack_ms.append((time.perf_counter() - t) * 1000)
        except httpx.TransportError as exc:
            errors.append(f"transport: {exc}")
            time.sleep(0.2)
            continue
        if r.status_code == 503:
            time.sleep(0.05)
            continue
        if r.status_code != 200:
            errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
        else:
            errors.extend(f"{x['error']['code']}: {x['error']['message']}" for x in r.json()["results"] if "error" in x)
        return


def _verify_chunk(items: list[tuple[bytes, bytes, bytes]]) -> int:
    ok = 0
    for key, sig, msg in items:
        ok += crypto.verify_signature(key, sig, msg)
    return ok


def raw_verify_limit(txs: list[Any], txids: list[bytes], workers: int | None = None) -> dict[str, Any]:
    """PyNaCl verification of every signature of ``txs`` on all cores: the ceiling of the node."""
    items = []
    for tx, txid in zip(txs, txids):
        msg = signing_bytes(txid)
        for s in tx.sigs:
            items.append((crypto.public_key_from_did(s.signer), bytes.fromhex(s.sig), msg))
    n = workers or os.cpu_count() or 1
    chunks = [items[i::n] for i in range(n)]
    with ProcessPoolExecutor(n) as pool:
        list(pool.map(_verify_chunk, [c[:10] for c in chunks]))  # start the workers before timing
        t = time.perf_counter()
        verified = sum(pool.map(_verify_chunk, chunks))
        dt = time.perf_counter() - t
    assert verified == len(items), "a benchmark signature did not verify"
    return {"raw_limit_tx_per_s": round(len(txs) / dt), "raw_verifies_per_s": round(len(items) / dt),
            "signatures_per_tx": round(len(items) / len(txs), 3), "cores": n}
