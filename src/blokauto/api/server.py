"""Serving the API with uvicorn on a socket we bind ourselves (so port 0 works and is known).

Connections are served by ``connections.GuardedH11Protocol``: a deadline for request heads and for
readers that stopped, and caps on connections per client address and in all (see there).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import threading
from typing import Any

import uvicorn

from ..logs import uvicorn_log_config
from ..node.node import Node
from .app import create_app
from .auth import own_authorities
from .connections import ConnectionGuard, GuardedH11Protocol, ListeningSocket, quiet_resource_errors
from .limits import ClientLimits


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self.app = app

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        quiet_resource_errors(asyncio.get_running_loop())
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the event streams first: they never end by themselves, and the graceful shutdown
        would otherwise wait for them and then cancel them mid-write."""
        self.app.state.api.events.close()
        await super().shutdown(sockets)


class ApiServer:
    def __init__(self, node: Node, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                 guard: ConnectionGuard | None = None, public_urls: tuple[str, ...] = ()) -> None:
        """``public_urls``: other addresses clients reach this node by (behind a proxy, a DNS name):
        a signed request names the address it was signed for, and the node answers only its own."""
        self.node = node
        self.guard = guard or ConnectionGuard()
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
        # a response written in two parts waits for the client's delayed ACK (40 ms per keep-alive request)
        self.sock = ListeningSocket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                                    socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.app_authorities = own_authorities(host, self.port, public_urls)
        app = create_app(node, authorities=self.app_authorities)
        limits = ClientLimits(app)
        app.state.metrics.serve_through(self.guard, limits)
        config = uvicorn.Config(limits, log_level=log_level, access_log=False, lifespan="on",
                                log_config=uvicorn_log_config(), timeout_graceful_shutdown=2,
                                http=functools.partial(GuardedH11Protocol, guard=self.guard))  # type: ignore[arg-type]
        self.server = _Server(config, app)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> int | None:
        """Serve until SIGINT/SIGTERM (call from the main thread); returns the signal that stopped it.

        uvicorn shuts down gracefully on a signal and then raises it again; with Python's default
        handlers that would end the process before the caller stops the node (flushing state,
        checkpointing the block log). The signal is recorded instead, and the caller stops cleanly.
        """
        received: list[int] = []
        previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.server.run(sockets=[self.sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return received[0] if received else None

    def start(self) -> str:
        """Serve from a background thread; returns the base URL once it accepts connections."""
        ready = threading.Event()

        def serve() -> None:
            asyncio.run(self._serve(ready))

        self._thread = threading.Thread(target=serve, name="api", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the API server did not start")
        return self.url

    async def _serve(self, ready: threading.Event) -> None:
        task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started and not task.done():
            await asyncio.sleep(0.01)
        ready.set()
        await task

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        logging.getLogger("blokauto.api").debug("stopped")
