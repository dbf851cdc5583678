"""Stateless transaction checks in worker processes (decode, size, chain, expiry, signatures).

Signature verification is the most expensive thing a node does per transaction, and it needs no
state, so it runs on every core in separate processes. Transactions travel in batches as msgpack
(one message per batch, not per transaction); each comes back as its id, its canonical bytes and
the decoded transaction re-encoded as msgpack (the node reads that back about four times faster
than it would parse the JSON again: it is the decoding the node's own interpreter no longer
does), or as the stable error code and detail that refused it.
"""

from __future__ import annotations

import importlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from ..core.errors import BlokautoError, RequestError, Unavailable, error_class
from ..core.tx import CheckedTx, check_stateless

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode

CHUNK = 256
INPUT_FAILURES = (ValueError, TypeError, KeyError, IndexError, RecursionError, UnicodeError, OverflowError,
                  AttributeError)


def _load_registry(factory: str) -> Any:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)()


def _worker_main(rfd: int, wfd: int, chain: str, factory: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the node stops its workers
    codec = _load_registry(factory).codec
    encode_tx = msgspec.msgpack.Encoder().encode
    inbox, conn = Connection(rfd, writable=False), Connection(wfd, readable=False)
    while True:
        try:
            data = inbox.recv_bytes()
        except (EOFError, OSError):
            return
        batch_id, now_ms, max_bytes, max_ttl, raws = _unpack(data)
        out: list[Any] = []
        for raw in raws:
            try:
                c = check_stateless(raw, codec, chain=chain, max_bytes=max_bytes, now_ms=now_ms, max_ttl_ms=max_ttl)
                out.append((0, c.id, c.raw, encode_tx(c.tx)))
            except RequestError as err:
                out.append((1, err.code, err.detail))
            except INPUT_FAILURES as exc:  # a worker must never die from what a client sent
                out.append((1, "malformed_tx", {"reason": f"the transaction could not be read ({type(exc).__name__})"}))
        try:
            conn.send_bytes(_pack((batch_id, out)))
        except OSError:
            return  # the node is gone (killed): nothing to answer


class _Batch:
    __slots__ = ("future", "results", "remaining", "started")

    def __init__(self, n_chunks: int, size: int) -> None:
        self.future: Future[list[CheckedTx | BlokautoError]] = Future()
        self.results: list[Any] = [None] * size
        self.remaining = n_chunks
        self.started = time.monotonic()


class VerifierPool:
    """``check(raws)`` -> Future of a list with a ``CheckedTx`` or a ``RequestError`` per input.

    A worker that dies (it should not: input errors are answered, not raised) has its pending
    batches answered with a retryable ``Unavailable`` and is started again.
    """

    def __init__(self, chain: str, registry: Any, *, workers: int | None = None,
                 registry_factory: str = "blokauto.modules:default_registry") -> None:
        self.chain = chain
        self._codec = registry.codec
        self._decode_tx = msgspec.msgpack.Decoder(registry.codec.tx_type).decode
        self._factory = registry_factory
        self.workers = workers or os.cpu_count() or 1
        self._outboxes: list[queue.SimpleQueue | None] = [None] * self.workers
        self._procs: list[Any] = [None] * self.workers
        self._pending: dict[int, tuple[_Batch, int, int, int]] = {}  # chunk -> (batch, offset, size, worker)
        self._ids = itertools.count()
        self._next = itertools.cycle(range(self.workers))
        self._lock = threading.Lock()
        self._closed = False
        for i in range(self.workers):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        to_r, to_w = os.pipe()  # node -> worker
        from_r, from_w = os.pipe()  # worker -> node
        p = subprocess.Popen(
            [sys.executable, "-m", "blokauto.node.verifier", str(to_r), str(from_w), self.chain, self._factory],
            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, close_fds=True)
        os.close(to_r)
        os.close(from_w)
        outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._outboxes[i] = outbox
        self._procs[i] = p
        # Writing to a full pipe blocks; a sender thread per worker keeps callers (the HTTP event
        # loop) from ever waiting on a busy worker.
        threading.Thread(target=self._send_loop, args=(Connection(to_w, readable=False), outbox), daemon=True,
                         name=f"verifier-send-{i}").start()
        threading.Thread(target=self._read_loop, args=(i, Connection(from_r, writable=False)), daemon=True,
                         name=f"verifier-results-{i}").start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def backlog(self) -> tuple[int, float]:
        """Transactions sent to the workers and not answered yet, and how long the oldest has waited (s)."""
        with self._lock:
            pending = list(self._pending.values())
        if not pending:
            return 0, 0.0
        return sum(size for _, _, size, _ in pending), time.monotonic() - min(b.started for b, _, _, _ in pending)

    def check(self, raws: list[bytes], *, now_ms: int | None, max_bytes: int, max_ttl_ms: int | None) -> Future:
        chunks = [raws[i:i + CHUNK] for i in range(0, len(raws), CHUNK)] or [[]]
        batch = _Batch(len(chunks), len(raws))
        offset = 0
        for chunk in chunks:
            cid = next(self._ids)
            with self._lock:
                if self._closed:
                    raise RuntimeError("the verifier pool is closed")
                w = next(self._next)
                self._pending[cid] = (batch, offset, len(chunk), w)
                outbox = self._outboxes[w]
            assert outbox is not None
            outbox.put(_pack((cid, now_ms, max_bytes, max_ttl_ms, chunk)))
            offset += len(chunk)
        return batch.future

    @staticmethod
    def _send_loop(conn: Connection, outbox: queue.SimpleQueue) -> None:
        while True:
            data = outbox.get()
            if data is None:
                conn.close()
                return
            try:
                conn.send_bytes(data)
            except OSError:
                return

    def _complete(self, batch: _Batch) -> None:
        with self._lock:
            batch.remaining -= 1
            done = batch.remaining == 0
        if done:
            batch.future.set_result(batch.results)

    def _read_loop(self, worker: int, conn: Connection) -> None:
        decode = self._decode_tx
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                self._worker_died(worker)
                return
            cid, out = _unpack(data)
            with self._lock:
                batch, offset, _, _ = self._pending.pop(cid)
            results = batch.results
            for j, (status, a, b, *tx) in enumerate(out):
                if status == 0:
                    results[offset + j] = CheckedTx(decode(tx[0]), a, b)
                else:
                    results[offset + j] = (error_class(a) or RequestError).recorded(b)
            self._complete(batch)

    def _worker_died(self, worker: int) -> None:
        with self._lock:
            lost = [(cid, v) for cid, v in self._pending.items() if v[3] == worker]
            for cid, _ in lost:
                del self._pending[cid]
            closed = self._closed
            outbox = self._outboxes[worker]
        if outbox is not None:
            outbox.put(None)
        for _, (batch, offset, size, _) in lost:
            for j in range(size):
                batch.results[offset + j] = Unavailable(reason="a signature worker stopped; submit again")
            self._complete(batch)
        if not closed:
            self._spawn(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        for outbox in self._outboxes:
            if outbox is not None:
                outbox.put(None)
        for p in self._procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
