"""What one client may hold of a node: requests in flight.

A client that waits (``?min_height``, ``?wait``, an event stream catching up) holds no thread
(``node.event_feed.HeightWaiter`` resolves asyncio futures when ``state.db`` reaches a height).
``ClientLimits``, an ASGI middleware, caps the requests one client (by address) has in flight; beyond it, 429 with
``Retry-After``, so one client cannot take every slot of a node from the others.
"""

from __future__ import annotations

from typing import Any

from .errors import TooManyRequests, error_bytes

MAX_CLIENT_REQUESTS = 64  # requests one client address may have in flight at once


class ClientLimits:
    """ASGI middleware: at most ``limit`` requests in flight per client address."""

    def __init__(self, app: Any, limit: int = MAX_CLIENT_REQUESTS) -> None:
        self.app = app
        self.limit = limit
        self.in_flight: dict[str, int] = {}
        self.refused = 0  # requests answered 429 (read by /metrics)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        if self.in_flight.get(client, 0) >= self.limit:
            self.refused += 1
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
