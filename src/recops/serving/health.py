"""Whether the event log can take writes: part of what ``/readyz`` says.

A server that cannot store events answers ``POST /v1/events`` with 503; a load
balancer should know before a client does. The log says why it could not take a
write (:meth:`~recops.serving.eventlog.EventLog.write_problem`): the SQLite log takes
the write lock on a connection of its own (``BEGIN IMMEDIATE``, then ``ROLLBACK``:
nothing is written) with a one-second timeout, and checks that the disk has room;
the PostgreSQL log asks its database, on a connection of its own, whether it answers
and takes writes (:class:`~recops.serving.eventlog.postgres.WriteProbe`).

The probe runs in a thread at most once per :data:`PROBE_S`; ``/readyz`` answers from
the last result in between, so a balancer's polling costs nothing, and the request
routes never wait for it. ``/readyz`` waits at most :data:`PROBE_TIMEOUT_S` for a
probe: a database that stopped answering (a network partition drops packets rather
than refusing them) is reported as such, and while that probe still hangs no other
is started, so a hung database holds one thread, not one per poll.
"""

from __future__ import annotations

import asyncio
import time

from fastapi.concurrency import run_in_threadpool

from recops.serving.eventlog import EventLog

#: Seconds a probe's answer is reused.
PROBE_S = 1.0
#: Longest wait for a probe's answer (above the PostgreSQL probe's own 2 s timeouts).
PROBE_TIMEOUT_S = 3.0


class EventLogProbe:
    """Cached answer to "can the event log take a write?".

    Parameters
    ----------
    log:
        The server's event log.
    timeout_s:
        Longest wait for one probe (:data:`PROBE_TIMEOUT_S`).
    """

    def __init__(self, log: EventLog, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.log = log
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._at = -float("inf")
        self._problem: str | None = None
        self._running: asyncio.Future[str | None] | None = None
        self._started = 0.0

    def _check(self) -> str | None:
        try:
            return self.log.write_problem()
        except Exception as exc:  # a probe that fails says why; it never fails /readyz
            return f"the probe failed: {type(exc).__name__}: {exc}"

    async def problem(self) -> str | None:
        """Why the log cannot take a write (None if it can), at most :data:`PROBE_S` old."""
        async with self._lock:
            if time.monotonic() - self._at < PROBE_S:
                return self._problem
            running = self._running
            if running is not None and not running.done():
                waited = time.monotonic() - self._started
                self._problem = f"no answer to the write probe for {waited:.0f} s"
            else:
                running = self._running = asyncio.ensure_future(run_in_threadpool(self._check))
                self._started = time.monotonic()
                try:
                    self._problem = await asyncio.wait_for(asyncio.shield(running), self.timeout_s)
                except TimeoutError:
                    self._problem = f"no answer to the write probe within {self.timeout_s:g} s"
            self._at = time.monotonic()
            return self._problem
