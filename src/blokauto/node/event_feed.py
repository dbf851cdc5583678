"""Committed events since a position: the block log's backlog, then live blocks, without a thread held.

``EventFeed.since(after, encode)`` is an async generator of encoded pieces ``(last event id,
bytes)`` for every event strictly after ``after`` (an event position: ``(height, tx, event,
derived)``, or ``(height, *AFTER_BLOCK)`` for "every event of block ``height``"). The API turns
the pieces into server-sent events; how they are encoded (``encode(event_id, event)``) is its
business, when and from where they are read is this module's.

What a feed holds is bounded whatever its client does: it encodes about ``EVENT_BUDGET`` bytes of
events at a time (reading one block for them, on one of ``EVENT_READ_THREADS`` threads shared by
every feed, so the blocks read at once are bounded too) and reads on only once its consumer took
them; where it stopped is a position, not a block held. Live blocks waiting for a feed are shared
with every other one and at most ``LIVE_BLOCKS``; a feed whose live blocks pile up past that
reads them back from the log instead. Derived events (read from indexes) are sent only once the
state has reached their block; a feed whose state does not within ``FLUSH_WAIT_S`` ends with
``FeedEnds`` (its consumer resumes later). Every other refusal or damage met is raised after the
events read before it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

from ..core.errors import BlokautoError, Unavailable
from ..store.damage import DamagedData
from .committer import CommittedBlock
from .reader import AFTER_BLOCK, ChainReader, block_events, parse_event_id

EVENT_CHUNK_BLOCKS = 1  # blocks a feed reads from the log at a time (their rows only while it reads)
EVENT_READ_THREADS = 2  # threads reading and encoding events for every feed: what they read at once is bounded
EVENT_BUDGET = 256 * 1024  # bytes of events a feed encodes at a time, handed on before it reads on
EVENT_BATCH = 64  # events in one piece
LIVE_BLOCKS = 32  # live blocks waiting for one feed; beyond, it reads them back from the log
FLUSH_WAIT_S = 30.0  # how long a feed waits for the state to reach a block before it ends

Position = tuple[int, int, int, int]
Encode = Callable[[str, dict[str, Any]], bytes]


class FeedEnds(Exception):
    """The feed cannot go on for now (``error`` says why); its consumer resumes later."""

    def __init__(self, error: BlokautoError) -> None:
        super().__init__(error.message)
        self.error = error


class HeightWaiter:
    """``await wait(height, timeout)`` until queries read ``height`` (no thread held).

    ``flushed()`` is the height the state has reached; ``on_flushed(listener)`` registers a
    callback the state's flusher calls (from its thread) with each new height."""

    def __init__(self, flushed: Callable[[], int], on_flushed: Callable[[Callable[[int], None]], None]) -> None:
        self.flushed = flushed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()
        on_flushed(self._flushed)

    def _flushed(self, height: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release, height)

    def _release(self, height: int) -> None:
        while self._waiting and self._waiting[0][0] <= height:
            _, _, fut = heapq.heappop(self._waiting)
            if not fut.done():
                fut.set_result(True)

    async def wait(self, height: int, timeout: float) -> bool:
        if self.flushed() >= height:
            return True
        self._loop = asyncio.get_running_loop()
        fut = self._loop.create_future()
        heapq.heappush(self._waiting, (height, next(self._seq), fut))
        if self.flushed() >= height:  # flushed between the check and the registration
            self._release(self.flushed())
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            if not fut.done():
                fut.cancel()
            self._waiting = [w for w in self._waiting if not w[2].done()]
            heapq.heapify(self._waiting)


class _LiveBlocks:
    """The live blocks waiting for one feed (event loop thread only)."""

    def __init__(self) -> None:
        self.blocks: deque[CommittedBlock] = deque()
        self.overflowed = False
        self.wake = asyncio.Event()

    def push(self, block: CommittedBlock) -> None:
        if len(self.blocks) >= LIVE_BLOCKS:
            self.blocks.clear()  # the feed reads them back from the log once its consumer takes more
            self.overflowed = True
        elif not self.overflowed:
            self.blocks.append(block)
        self.wake.set()

    def next_after(self, height: int) -> CommittedBlock | None:
        while self.blocks and self.blocks[0].header.height <= height:
            self.blocks.popleft()
        return self.blocks[0] if self.blocks else None


@dataclass
class Encoded:
    """Events encoded: pieces of at most ``EVENT_BATCH`` events with the id of the last one; ``done``
    once the events asked for ran out (not cut at the budget); the error met after them, if any."""

    pieces: list[tuple[str, bytes]]
    done: bool
    failed: Exception | None = None


def encode_events(events: Iterator[tuple[str, dict[str, Any]]], encode: Encode, budget: int = EVENT_BUDGET) -> Encoded:
    """Encode events until about ``budget`` bytes (then stop: the rest is read again when these are taken)."""
    out = Encoded([], False)
    batch: list[bytes] = []
    size, last = 0, ""
    try:
        for eid, ev in events:
            message = encode(eid, ev)
            batch.append(message)
            size += len(message)
            last = eid
            if len(batch) >= EVENT_BATCH:
                out.pieces.append((last, b"".join(batch)))
                batch = []
            if size >= budget:
                break
        else:
            out.done = True
    except (BlokautoError, DamagedData, sqlite3.DatabaseError) as exc:  # raised after the events read before it
        out.failed = exc
    if batch:
        out.pieces.append((last, b"".join(batch)))
    return out


class EventFeed:
    """Every consumer's events, from one node: ``since(after, encode)`` (see the module docstring)."""

    def __init__(self, reader: ChainReader, *, head: Callable[[], int], heights: HeightWaiter,
                 subscribe: Callable[[Callable[[CommittedBlock], None]], Callable[[], None]]) -> None:
        self.reader = reader
        self.head = head
        self.heights = heights
        self.subscribe = subscribe
        self._reads = ThreadPoolExecutor(EVENT_READ_THREADS, thread_name_prefix="event-feed")
        self._feeds: set[_LiveBlocks] = set()
        self.closed = False

    def close(self) -> None:
        """End every feed at its next step (the server is stopping; consumers resume elsewhere or
        later with their last event id). Call on the event loop's thread."""
        self.closed = True
        for live in self._feeds:
            live.wake.set()

    async def since(self, after: Position, encode: Encode) -> AsyncIterator[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        live = _LiveBlocks()

        def on_block(block: CommittedBlock) -> None:  # the ordering's thread
            loop.call_soon_threadsafe(live.push, block)

        unsubscribe = self.subscribe(on_block)
        self._feeds.add(live)
        position = after  # the last event handed on, or (h, AFTER_BLOCK): every event of block h handed on
        try:
            while not self.closed:
                whole = position[1:] == AFTER_BLOCK
                sent = position[0] if whole else position[0] - 1  # blocks wholly handed on
                head = self.head()
                block = live.next_after(sent)
                if sent < head and (not whole or live.overflowed or block is None
                                    or block.header.height != sent + 1):
                    # from the log: the backlog, the rest of a block, a gap, or what piled up unread
                    live.overflowed = False
                    target = await self._flushed_part(sent + 1, min(head, sent + EVENT_CHUNK_BLOCKS))
                    start = position if not whole else (sent + 1, -1, -1, -1)  # (the log read starts at start[0])
                    encoded = await loop.run_in_executor(self._reads, self._from_log, start, target, encode)
                elif block is not None:
                    live.blocks.popleft()
                    h, target = block.header.height, block.header.height
                    expand = None
                    if self.reader.expands(block.receipts):  # derived events read indexes: they must hold block h
                        await self._flushed_part(h, h)
                        expand = self.reader.expand
                    encoded = await loop.run_in_executor(self._reads, self._from_block, block, position, expand,
                                                         encode)
                else:
                    live.wake.clear()
                    try:
                        await asyncio.wait_for(live.wake.wait(), HEARTBEAT)
                    except asyncio.TimeoutError:
                        yield "", b""  # nothing for a while: the consumer may send a keep-alive
                    continue
                for eid, piece in encoded.pieces:
                    yield eid, piece
                    position = parse_event_id(eid)
                if encoded.failed is not None:
                    raise encoded.failed
                if encoded.done:
                    position = (target, *AFTER_BLOCK)  # the rest of a block cut at the budget is read from the log
            raise FeedEnds(Unavailable(reason="it is stopping; reconnect (to it or another node) with Last-Event-ID"))
        finally:
            self._feeds.discard(live)
            unsubscribe()

    def _from_log(self, start: Position, until: int, encode: Encode) -> Encoded:
        return encode_events(self.reader.events(start, until), encode)

    @staticmethod
    def _from_block(block: CommittedBlock, start: Position, expand: Any, encode: Encode) -> Encoded:
        return encode_events(block_events(block.header.height, block.header.time, block.tx_ids, block.receipts,
                                          start, expand), encode)

    async def _flushed_part(self, first: int, last: int) -> int:
        """The last height of ``first..last`` that queries read (derived events need it), waiting up to
        ``FLUSH_WAIT_S`` for ``first``; a feed whose state does not reach it ends."""
        flushed = self.heights.flushed()
        if flushed >= last:
            return last
        if flushed >= first:
            return flushed
        if not await self.heights.wait(first, FLUSH_WAIT_S):
            raise FeedEnds(Unavailable(reason=f"its state has not reached block {first} within {FLUSH_WAIT_S:.0f} s, "
                                              "and derived events are never sent incomplete; reconnect with "
                                              "Last-Event-ID"))
        return max(first, min(last, self.heights.flushed()))


#: Seconds without an event after which a feed yields an empty piece (the API sends a keep-alive).
HEARTBEAT = 15.0
