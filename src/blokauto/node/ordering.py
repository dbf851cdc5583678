"""Ordering protocols: who decides which transactions form the next block, and when.

An ordering takes pre-checked transactions from the node (``enqueue``), answers each submitter
once its transaction is durable in the ordering's own sense (solo: the fsynced intake journal;
JetStream: the stream's acknowledgement), and hands blocks to the ``BlockCommitter`` on a thread
of its own. Two implementations: ``SoloOrdering`` (``solo.py``) and ``JetStreamOrdering``
(``jetstream_ordering.py``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from ..core.errors import BlokautoError, Unavailable
from ..core.tx import CheckedTx
from ..store.damage import DamagedData
from .committer import BlockCommitter
from .faults import NodeFault

log = logging.getLogger("blokauto.engine")


@dataclass
class NodeConfig:
    block_max_txs: int = 2_000
    block_interval_ms: int = 50
    max_pending: int = 100_000
    #: False only to measure what the journal costs (``bench throughput``): ids are then answered
    #: before they are durable, and a crash can lose acknowledged transactions.
    durable_acks: bool = True
    #: Write state layers in a process of their own (a node; in-process committers write in a thread).
    state_writer_process: bool = False


class Submission:
    """The answers to one batch of submitted transactions: per input, its id once accepted for
    ordering, or the ``BlokautoError`` refusing it. ``future`` resolves when all are known."""

    __slots__ = ("results", "future", "_remaining", "_lock")

    def __init__(self, size: int) -> None:
        self.results: list[bytes | BlokautoError | None] = [None] * size
        self.future: Future[list[bytes | BlokautoError]] = Future()
        self._remaining = size
        self._lock = threading.Lock()
        if size == 0:
            self.future.set_result([])

    def answer(self, index: int, value: bytes | BlokautoError) -> None:
        self.results[index] = value
        with self._lock:
            self._remaining -= 1
            done = self._remaining == 0
        if done:
            self.future.set_result(self.results)  # type: ignore[arg-type]


#: A pre-checked transaction, the submission it belongs to and its index there.
Item = tuple[CheckedTx, Submission, int]


def refuse_all(items: list[Item], reason: str) -> None:
    for _, sub, i in items:
        sub.answer(i, Unavailable(reason=reason))


class Ordering:
    """The common life of an ordering: a thread running ``_loop`` that must never die silently.

    ``failure`` is set when it stopped on an error (the node then refuses submissions and
    reports unhealthy); ``halt(reason)`` stops it from another thread (damage found by a read)."""

    name = "ordering"

    def __init__(self, committer: BlockCommitter, config: NodeConfig) -> None:
        self.committer = committer
        self.config = config
        self.failure: BaseException | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # what an implementation provides
    def recover(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recover the committer, then what the ordering itself keeps; returns blocks replayed."""
        return self.committer.recover(progress)

    def _loop(self) -> None:
        raise NotImplementedError

    def _drain(self) -> list[Item]:
        """Take every item still waiting (it is answered ``unavailable``)."""
        return []

    @property
    def pending(self) -> int:
        raise NotImplementedError

    def enqueue(self, items: list[Item]) -> None:
        raise NotImplementedError

    def halt(self, reason: BaseException) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        return {"ordering": self.name}

    # the shared life
    def refused_now(self, items: list[Item]) -> bool:
        """Answer ``items`` unavailable if the ordering is stopping or stopped (True if it did)."""
        if self._stopping or self.failure is not None:
            refuse_all(items, "the node is stopping" if self._stopping else "the engine stopped")
            return True
        return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the ordering thread must never die silently
            self.failure = exc
            if isinstance(exc, (NodeFault, DamagedData)):  # a finding about its data: the message says it all
                log.error("engine stopped: %s", exc)
            else:
                log.exception("engine stopped")
            refuse_all(self._drain(), "the engine stopped")
