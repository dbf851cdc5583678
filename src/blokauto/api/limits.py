"""What one client may hold of a node: requests in flight, and waits for a height, without threads.

A client that waits (``?min_height``, ``?wait``, an event stream catching up) holds no thread:
``HeightWaiter`` resolves asyncio futures when ``state.db`` reaches a height. ``ClientLimits``, an
ASGI middleware, caps the requests one client (by address) has in flight; beyond it, 429 with
``Retry-After``, so one client cannot take every slot of a node from the others.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

from .errors import TooManyRequests, error_bytes

MAX_CLIENT_REQUESTS = 64  # requests one client address may have in flight at once


class HeightWaiter:
    """``await wait(height, timeout)`` until the state store has flushed ``height`` (no thread held)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()
        state.on_flushed(self._flushed)

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
        if self.state.flushed_height >= height:
            return True
        self._loop = asyncio.get_running_loop()
        fut = self._loop.create_future()
        heapq.heappush(self._waiting, (height, next(self._seq), fut))
        if self.state.flushed_height >= height:  # flushed between the check and the registration
            self._release(self.state.flushed_height)
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


class ClientLimits:
    """ASGI middleware: at most ``limit`` requests in flight per client address."""

    def __init__(self, app: Any, limit: int = MAX_CLIENT_REQUESTS) -> None:
        self.app = app
        self.limit = limit
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        if self.in_flight.get(client, 0) >= self.limit:
            await _too_many(send, self.limit)
            return
        self.in_flight[client] = self.in_flight.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            n = self.in_flight[client] - 1
            if n:
                self.in_flight[client] = n
            else:
                del self.in_flight[client]


async def _too_many(send: Any, limit: int) -> None:
    body = error_bytes(TooManyRequests(limit=limit))
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
