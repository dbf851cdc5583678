"""Solo ordering: one node orders its own transactions.

A transaction is pre-checked against the newest state, written to the fsynced intake journal
(group commit by the journal's writer thread, while the current block executes) and only then
answered with its id; a block is cut from what was accepted at ``block_max_txs`` or
``block_interval_ms`` after its first transaction, stamped with the clock. At start, whatever
the journal holds that no block does is ordered first: an answered id is never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from ..core.errors import BlokautoError, Unavailable
from ..core.tx import CheckedTx, check_stateless
from .committer import BlockCommitter
from .journal import IntakeJournal, JournalWriter
from .ordering import Item, NodeConfig, Ordering, refuse_all

log = logging.getLogger("blokauto.engine")


class SoloOrdering(Ordering):
    name = "solo"

    def __init__(self, committer: BlockCommitter, config: NodeConfig) -> None:
        super().__init__(committer, config)
        self.journal = IntakeJournal(committer.data_dir)
        self._journal_writer: JournalWriter | None = None
        self.recovered_from_journal = 0
        self._inbox: deque[Item] = deque()
        self._inbox_cond = threading.Condition()
        self._flush_done = False  # the state flusher finished a layer: hand it what waits (ordering thread)
        self._halt: BaseException | None = None
        self._in_open_block = 0  # accepted (answered) transactions waiting for the block being formed
        committer.state.on_flushed(self._state_flushed)

    # ---------------------------------------------------------------- recovery

    def recover(self, progress: Callable[[int, int], None] | None = None) -> int:
        replayed = self.committer.recover(progress)
        self._recover_intake()
        return replayed

    def _recover_intake(self) -> None:
        """Order whatever the intake journal holds that no committed block does."""
        c = self.committer
        recorded = c.recorded_head
        contents = self.journal.read(answered=recorded.journal if recorded is not None else None)
        assert c.head is not None
        c.head_marker.write(c.head)  # the head as of now, before the journal's state is recorded with it
        self.journal.on_durable = lambda state: c.head_marker.write(journal=state)
        self.journal.open()
        pending: list[CheckedTx] = []
        seen: set[bytes] = set()
        for raw in contents.txs:
            try:
                checked = check_stateless(raw, c.registry.codec, chain=c.chain, max_bytes=1 << 30)
            except BlokautoError as err:  # it passed these checks before it was journaled: the file was changed
                log.warning("the intake journal holds a transaction that fails the stateless checks (%s); "
                            "left out", err.message)
                continue
            if checked.id in seen or c.locate(checked.id) is not None:
                continue
            seen.add(checked.id)
            pending.append(checked)
        limit = c.block_limit(self.config.block_max_txs)
        for i in range(0, len(pending), limit):
            c.produce(pending[i:i + limit])
        self.recovered_from_journal = len(pending)
        if pending:
            log.info("ordered %d acknowledged transactions from the intake journal that no block held yet",
                     len(pending))
        self.journal.clear()

    # ---------------------------------------------------------------- running

    def start(self) -> None:
        self._journal_writer = JournalWriter(self.journal)
        super().start()

    def stop(self) -> None:
        """Stop ordering (the block being formed is committed first) and close the journal."""
        with self._inbox_cond:
            self._stopping = True
            self._inbox_cond.notify_all()
        self.join()
        refuse_all(self._drain(), "the node is stopping")
        if self._journal_writer is not None:
            self._journal_writer.close()  # every group asked for is written (and answered) first
        if self.failure is None and self.journal.state[1]:  # every journaled transaction is in a block now
            self.journal.clear()
        self.journal.close()

    @property
    def pending(self) -> int:
        return len(self._inbox) + self._in_open_block

    def enqueue(self, items: list[Item]) -> None:
        with self._inbox_cond:
            if self.refused_now(items):
                return
            self._inbox.extend(items)
            self._inbox_cond.notify()

    def halt(self, reason: BaseException) -> None:
        self._halt = reason
        with self._inbox_cond:
            self._inbox_cond.notify_all()

    def status(self) -> dict[str, object]:
        return {"ordering": self.name}

    def _drain(self) -> list[Item]:
        with self._inbox_cond:
            items = list(self._inbox)
            self._inbox.clear()
        return items

    def _state_flushed(self, height: int) -> None:
        """The state flusher wrote a layer (flusher thread): wake the ordering to hand it the next."""
        with self._inbox_cond:
            self._flush_done = True
            self._inbox_cond.notify()

    def _take_arrived(self, deadline: float | None) -> list[Item]:
        """What arrived in the inbox, waiting for something (or until ``deadline``, if a block is open)."""
        with self._inbox_cond:
            while not self._inbox and not self._stopping and self._halt is None and not self._flush_done:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._inbox_cond.wait(left)
            items = list(self._inbox)
            self._inbox.clear()
            return items

    def _loop(self) -> None:
        """Transactions are checked, journaled and answered as they arrive (so an id is answered as
        soon as it is durable, whatever the block window), and a block is cut from what was
        accepted at ``block_max_txs`` or ``block_interval_ms`` after its first one."""
        c = self.committer
        interval = self.config.block_interval_ms / 1000
        accepted: list[Item] = []
        seen: set[bytes] = set()
        deadline: float | None = None
        while not self._stopping:
            if self._halt is not None:
                raise self._halt
            arrived = self._take_arrived(deadline)
            if self._flush_done:
                self._flush_done = False
                c.state.catch_up()
            if arrived:
                new = self._precheck(arrived, seen)
                if new:
                    self._journal(new)
                    accepted += new
                    if deadline is None:
                        deadline = time.monotonic() + interval
            limit = c.block_limit(self.config.block_max_txs)
            while accepted and (len(accepted) >= limit or time.monotonic() >= deadline or self._stopping):
                block, accepted = accepted[:limit], accepted[limit:]
                c.produce([checked for checked, _, _ in block])
                seen.difference_update(checked.id for checked, _, _ in block)
                assert self._journal_writer is not None
                self._journal_writer.committed()
                deadline = time.monotonic() + interval if accepted else None
            self._in_open_block = len(accepted)

    def _precheck(self, batch: list[Item], seen: set[bytes]) -> list[Item]:
        """Refuse, before ordering, what execution would refuse for replay or authorisation (``seen``:
        ids accepted for the block being formed, updated)."""
        accepted: list[Item] = []
        for item in batch:
            checked, sub, i = item
            err = self.committer.check_stateful(checked, seen)
            if err is not None:
                sub.answer(i, err)
                continue
            seen.add(checked.id)
            accepted.append(item)
        return accepted

    def _journal(self, accepted: list[Item]) -> None:
        """Make accepted transactions durable (one fsync for the group, while their block executes),
        then answer their ids. If the journal cannot be written, the transactions are answered
        ``unavailable`` (not acknowledged; sending them again is safe: a repeat that was included
        anyway is refused as a replay naming its block)."""

        def durable(err: OSError | None) -> None:
            for checked, sub, i in accepted:
                sub.answer(i, checked.id if err is None else
                           Unavailable(reason=f"the node cannot write its intake journal ({err.strerror})"))

        if not self.config.durable_acks:
            durable(None)
            return
        assert self._journal_writer is not None
        self._journal_writer.append([checked.raw for checked, _, _ in accepted], durable)
