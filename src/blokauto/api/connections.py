"""What one connection, and one client address, may hold of a node below HTTP (uvicorn's h11 protocol).

uvicorn bounds the size of a request head, not the time it takes: its keep-alive timer stops at the
first byte, so a client that sends a head a byte at a time, or never finishes it, holds its
connection (and a file descriptor) forever, and no request of it is ever counted. ``GuardedH11Protocol``
adds, per connection:

- a deadline for the request head: a connection whose request line and headers are not complete
  ``head_timeout`` seconds after it opened (or after the first byte of a later request on it) is
  answered 408 ``request_timeout`` and closed;
- a deadline for the request body: once the head is in, its body must arrive within
  ``head_timeout`` seconds plus its announced length at ``min_body_rate`` bytes a second (60 s for a
  body of unannounced length), or the request is answered 408 ``request_body_timeout`` and closed
  (a client that announces a length and sends a few bytes would otherwise hold a request for ever);
- a deadline for a reader that stopped: a response whose bytes the client has not taken for
  ``write_stall`` seconds (the transport's buffer stayed over its high-water mark all that time) is
  aborted, so a client that never reads holds neither the connection nor what was written for it
  (an event stream resumes with ``Last-Event-ID``);
- caps on connections: at most ``per_client`` open connections per client address and ``total`` in
  all (half the process's file descriptors, at most 10,000); a connection beyond them is answered
  429 ``too_many_connections`` or 503 ``unavailable`` if it sends a request within a second, and
  closed either way.

When the process has no file descriptor left, ``ListeningSocket`` closes new connections at once
(with a descriptor it kept spare) instead of letting asyncio's accept loop fail, and these
errors are logged once a minute with a count (``quiet_resource_errors`` too, for the loop's own),
instead of once per attempt with a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import time
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.errors import BlokautoError, Unavailable
from .errors import BodyTimeout, RequestTimeout, TooManyConnections, error_bytes, http_status

log = logging.getLogger("blokauto.api")

HEAD_TIMEOUT_S = 10.0  # a request line and headers arrive within this
WRITE_STALL_S = 60.0  # a client takes some of what it is sent within this
MIN_BODY_RATE = 64 * 1024  # bytes a second a request body arrives at, at least
CHUNKED_BODY_S = 60.0  # a body of unannounced length arrives within this
MAX_CLIENT_CONNECTIONS = 128  # open connections per client address (64 requests in flight, and idle ones)
REFUSED_GRACE_S = 1.0  # a refused connection is answered if it sends a request within this, then closed


def default_max_connections() -> int:
    """Half the file descriptors the process may open (the rest: databases, workers, pipes), at most 10,000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(64, min(10_000, soft // 2))


class ConnectionGuard:
    """The connections a server holds, per client address and in all, and its deadlines."""

    def __init__(self, *, per_client: int = MAX_CLIENT_CONNECTIONS, total: int | None = None,
                 head_timeout: float = HEAD_TIMEOUT_S, write_stall: float = WRITE_STALL_S,
                 min_body_rate: int = MIN_BODY_RATE) -> None:
        self.per_client = per_client
        self.total = total if total is not None else default_max_connections()
        self.head_timeout = head_timeout
        self.min_body_rate = min_body_rate
        self.write_stall = write_stall
        self.open: dict[str, int] = {}
        self.count = 0
        self.refused = 0
        self.timed_out = 0
        self.stalled = 0

    def admit(self, host: str) -> BlokautoError | None:
        """Count a new connection of ``host``, or say why it is refused."""
        if self.open.get(host, 0) >= self.per_client:
            self.refused += 1
            return TooManyConnections(limit=self.per_client)
        if self.count >= self.total:
            self.refused += 1
            return Unavailable(reason=f"it has {self.total} connections open, the most it holds")
        self.open[host] = self.open.get(host, 0) + 1
        self.count += 1
        return None

    def release(self, host: str) -> None:
        n = self.open.get(host, 0) - 1
        if n > 0:
            self.open[host] = n
        else:
            self.open.pop(host, None)
        self.count -= 1


def raw_response(status: int, err: BlokautoError) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (written below Litestar)."""
    body = error_bytes(err)
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"]
    if err.retryable:
        head.append("retry-after: 1")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and caps of a ``ConnectionGuard``."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._host: str | None = None  # set once the connection is counted
        self._refusal: BlokautoError | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- opening and closing

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else "?"
        self._refusal = self.guard.admit(host)
        if self._refusal is not None:
            self._head_timer = self.loop.call_later(REFUSED_GRACE_S, self.transport.close)
            return
        self._host = host
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self._host is not None:
            self.guard.release(self._host)
            self._host = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:  # beyond a cap: answer its request with the refusal, and close
            if not self.transport.is_closing():
                self.transport.write(raw_response(http_status(self._refusal), self._refusal))
                self.transport.close()
            return
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_head_timer()
            self._cancel_body_timer()
        elif self.conn.their_state is h11.IDLE:  # a request head has begun and is not complete
            if self._head_timer is None:
                self._arm_head_timer()
        else:
            self._cancel_head_timer()
            if self.conn.their_state is h11.SEND_BODY:  # the head is in; its body is still coming
                if self._body_timer is None:
                    self._arm_body_timer()
            else:
                self._cancel_body_timer()

    # ---------------------------------------------------------------- the request head's deadline

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.guard.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.guard.timed_out += 1
        if self.conn.our_state is h11.IDLE:
            seconds = int(self.guard.head_timeout) if self.guard.head_timeout.is_integer() else self.guard.head_timeout
            self.transport.write(raw_response(408, RequestTimeout(seconds=seconds)))
        self.transport.close()

    # ---------------------------------------------------------------- the request body's deadline

    def _body_deadline(self) -> float:
        length = next((v for k, v in self.headers if k == b"content-length"), None) if self.headers else None
        if length is None or not length.isdigit():
            return CHUNKED_BODY_S
        return self.guard.head_timeout + int(length) / self.guard.min_body_rate

    def _arm_body_timer(self) -> None:
        self._body_timer = self.loop.call_later(self._body_deadline(), self._body_timed_out)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        self.guard.timed_out += 1
        cycle = getattr(self, "cycle", None)
        if cycle is None or not cycle.response_started:  # nothing of a response sent yet: say why, then close
            seconds = round(self._body_deadline(), 1)
            self.transport.write(raw_response(408, BodyTimeout(seconds=seconds, rate=self.guard.min_body_rate // 1024)))
        self.transport.close()

    # ---------------------------------------------------------------- a reader that stopped

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.guard.write_stall, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _write_stalled(self) -> None:
        self._stall_timer = None
        if not self.transport.is_closing():
            self.guard.stalled += 1
            log.info("closed a connection of %s: it read nothing of its response for %s s", self._host,
                     self.guard.write_stall)
            self.transport.abort()


_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
RESOURCE_LOG_INTERVAL_S = 60.0


class _ResourceLog:
    """One log line per ``interval`` for running out of file descriptors (or memory for sockets), with a count."""

    def __init__(self, interval: float = RESOURCE_LOG_INTERVAL_S) -> None:
        self.interval = interval
        self.last = float("-inf")
        self.since = 0

    def note(self, what: str, exc: OSError) -> None:
        self.since += 1
        now = time.monotonic()
        if now - self.last >= self.interval:
            log.warning("%s: %s (%d such errors since the last line like this); the node cannot open more files "
                        "or connections until some close, and closes new connections at once meanwhile: raise the "
                        "file limit (ulimit -n) or find the client holding them", what, exc.strerror, self.since)
            self.last, self.since = now, 0


_resource_log = _ResourceLog()


def _spare_fd() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


class ListeningSocket(socket.socket):
    """A listening socket that, when the process is out of file descriptors, closes pending
    connections one at a time with a descriptor it kept spare, instead of failing ``accept()``.

    asyncio's accept loop (CPython 3.11) does not stop at a failed ``accept()``: it tries again up to
    its backlog (2,048 under uvicorn) times in a row, logging each failure with a traceback and
    leaving a retry timer for each. A client sees its connection closed at once, not held."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spare = _spare_fd()
        self._backed_off = float("-inf")

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in _RESOURCE_ERRNOS:
                raise
            _resource_log.note("accepting a connection", exc)
            if self._shed_one():
                raise BlockingIOError(errno.EAGAIN, "closed a connection: no file descriptor left") from None
            now = time.monotonic()
            if now - self._backed_off < 0.5:  # asyncio already waits a second before accepting again
                raise BlockingIOError(errno.EAGAIN, "no file descriptor left") from None
            self._backed_off = now
            raise

    def _shed_one(self) -> bool:
        if self._spare is None:
            return False
        os.close(self._spare)
        try:
            fd, _ = self._accept()  # type: ignore[attr-defined]
            os.close(fd)
            return True
        except OSError:
            return False
        finally:
            self._spare = _spare_fd()

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        super().close()


def quiet_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log the loop's "out of system resources" errors (accept failing with EMFILE while every file
    descriptor is in use) at most once a minute, as one line with a count, and the retries of
    accepting on a listening socket closed meanwhile (at shutdown) not at all; every other error
    goes to the handler there was."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            _resource_log.note(context.get("message", "out of system resources"), exc)
            return
        if isinstance(exc, ValueError) and "_start_serving" in repr(context.get("handle")):
            log.debug("a retry of accepting on a closed listening socket: %s", exc)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
