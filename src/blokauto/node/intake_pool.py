"""The node's intake workers: processes that check and compress batches of samples
(``telemetry_intake.prepare_batch``: decode, the batch's Merkle root and trip summary against its
transaction, zlib), so the node's own interpreter only stores the result and submits the
transaction. Started on the first batch, stopped with the node."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

from ..core.errors import error_class
from ..modules.telemetry.messages import CommitBatch
from ..telemetry_intake import PreparedBatch, SamplesInvalid, prepare_batch


def _worker_init(node_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the node stops its workers

    def watch() -> None:  # a node killed with SIGKILL cannot stop its workers: they stop themselves
        while os.getppid() == node_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="node-watch").start()


class IntakePool:
    """Worker processes that check and compress batches of samples (``prepare_batch``), so the node's
    own interpreter only stores the result: the Merkle root of 1,000 samples alone is about a
    millisecond of hashing. Started on the first batch (a node that takes none runs no extra
    process); ``close`` stops them."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, raw: bytes, msg: CommitBatch) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_worker_init, initargs=(os.getpid(),))
            return self._pool.submit(prepare_batch, raw, msg)

    def pids(self) -> list[int]:
        with self._lock:
            procs = getattr(self._pool, "_processes", None) or {}
            return sorted(procs)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


async def prepared(pool: IntakePool, raw: bytes, msg: CommitBatch) -> PreparedBatch:
    """The batch checked and compressed by ``pool``; raises the intake's refusal as it was made there."""
    status, a, b = await asyncio.wrap_future(pool.submit(raw, msg))
    if status != "ok":
        cls = error_class(a) or SamplesInvalid
        raise cls.recorded(b)
    return a  # type: ignore[no-any-return]
