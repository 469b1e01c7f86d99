"""Connections that cannot hold the server: read deadlines and a per-worker cap.

uvicorn closes a keep-alive connection idle for ``timeout_keep_alive`` seconds, but
waits forever for the headers (or the body) of a request once a first byte came, or
before any: about 20,000 half-open connections (headers never finished) reached the
open-file limit, and a connection that sent half a body stayed open 25 s and more.
Its ``limit_concurrency`` does not help: it counts those connections too, and
answers the *new* clients with 503.

:class:`GuardedHttpTools` is uvicorn's httptools protocol with what it lacks, in the
protocol, where the bytes arrive (the ASGI app only sees a request once its headers
are complete):

* **Header deadline.** From the connection's start (or the first byte of the next
  request on a keep-alive connection) the headers must be complete within
  ``header_timeout_s``; else 408 and close.
* **Body deadline.** From the end of the headers the body must be complete within
  ``body_timeout_s``; else 408 (if no reply has started) and close. The app, if it
  is reading the body, sees a disconnect.
* **Cap.** At most ``max_connections`` per worker. One more closes the oldest
  connection that is not in a request (waiting for its headers, or idle between
  keep-alive requests), so a flood of half-open connections gives way to fresh
  clients; only when every connection is inside a request is the new one refused
  with 503.

A pool of idle keep-alive connections closed by the cap reconnects on next use.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 26\r\nconnection: close\r\n\r\nrequest not sent in time.\n"
)
_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 33\r\nconnection: close\r\nretry-after: 1\r\n\r\n"
    b"too many connections: try again.\n"
)


class ConnectionPolicy:
    """The limits of one worker's connections, and what they did (for metrics).

    Parameters
    ----------
    max_connections:
        Open connections per worker.
    header_timeout_s, body_timeout_s:
        Deadlines for a request's headers and for its body.
    """

    def __init__(
        self, max_connections: int, header_timeout_s: float, body_timeout_s: float
    ) -> None:
        for name, value in (
            ("max_connections", max_connections),
            ("header_timeout_s", header_timeout_s),
            ("body_timeout_s", body_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"`{name}` must be > 0 (got {value!r})")
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        #: Connections not inside a request, oldest first: the ones the cap may close.
        self.waiting: OrderedDict[GuardedHttpTools, None] = OrderedDict()
        #: Set when the server drains before closing: no connection is kept alive.
        self.draining = False
        #: Connections closed by this policy, by reason.
        self.closed = {"header_timeout": 0, "body_timeout": 0, "evicted": 0, "refused": 0}

    def awaiting_first_request(self) -> int:
        """Open connections that have not sent a request yet (just accepted)."""
        return sum(1 for conn in self.waiting if not conn.requested)

    def protocol(self) -> type[GuardedHttpTools]:
        """A protocol class for ``uvicorn.Config(http=...)`` bound to this policy."""
        return type("GuardedHttpTools", (GuardedHttpTools,), {"policy": self})


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body deadlines and the connection cap.

    The parser's callbacks only note the phase a connection is in and by when it
    must end (two clock reads per request); a timer is armed after the bytes
    received were parsed, and only while a phase is unfinished. A request that
    arrives whole in one read, the usual case, arms no timer at all.
    """

    policy: ClassVar[ConnectionPolicy]
    #: Whether a request has begun on this connection.
    requested = False
    # The unfinished phase ("header_timeout" or "body_timeout": its reason to
    # close) and the loop time it must end by; None between requests.
    _phase: str | None = None
    _until = 0.0
    _deadline: asyncio.TimerHandle | None = None
    _armed: tuple[str, float] | None = None

    # -- the connection's life --------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        policy = self.policy
        if len(self.connections) > policy.max_connections:
            oldest = next(iter(policy.waiting), None)
            if oldest is None:
                policy.closed["refused"] += 1
                transport.write(_FULL)
                transport.close()
                return
            policy.closed["evicted"] += 1
            policy.waiting.pop(oldest)
            oldest.transport.close()
        policy.waiting[self] = None
        self._enter("header_timeout", policy.header_timeout_s)
        self._sync_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = None
        self._sync_timer()
        self.policy.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.transport.is_closing():
            self._sync_timer()

    # -- a request's phases (parser callbacks) ----------------------------------

    def on_message_begin(self) -> None:
        self.requested = True
        super().on_message_begin()
        if self._phase is None:  # a request's first byte after a keep-alive pause
            self._enter("header_timeout", self.policy.header_timeout_s)

    def on_headers_complete(self) -> None:
        self.policy.waiting.pop(self, None)
        self._enter("body_timeout", self.policy.body_timeout_s)
        super().on_headers_complete()
        if self.policy.draining and self.cycle is not None:
            # The reply says `Connection: close`: the client sends its next
            # request on a new connection, to a server that is not draining.
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        self._phase = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.policy.waiting[self] = None  # idle: keep-alive, or the next pipelined one

    # -- deadlines --------------------------------------------------------------

    def _enter(self, phase: str, seconds: float) -> None:
        self._phase = phase
        self._until = self.loop.time() + seconds

    def _sync_timer(self) -> None:
        """Arm the timer of the unfinished phase, or cancel a timer no phase needs."""
        wanted = None if self._phase is None else (self._phase, self._until)
        if wanted == self._armed:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._armed = wanted
        if wanted is not None:
            self._deadline = self.loop.call_at(wanted[1], self._expired, wanted[0])

    def _expired(self, reason: str) -> None:
        self._deadline = None
        self._armed = None
        if self.transport.is_closing():
            return
        self.policy.closed[reason] += 1
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_TIMEOUT)
        self.transport.close()
