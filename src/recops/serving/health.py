"""Whether the event log can take writes: part of what ``/readyz`` says.

A server that cannot store events answers ``POST /v1/events`` with 503; a load
balancer should know before a client does. The probe opens its own connection to
the log's SQLite file and takes the write lock (``BEGIN IMMEDIATE``, then
``ROLLBACK``: nothing is written), with a one-second timeout, and checks that the
disk has room. It runs in a thread at most once per :data:`PROBE_S`; ``/readyz``
answers from the last result in between, so a balancer's polling costs nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from recops.serving.eventlog import EventLog

#: Seconds a probe's answer is reused.
PROBE_S = 1.0
#: Free disk space below which the log counts as not writable.
MIN_FREE_BYTES = 16 * 1024**2


def probe_sqlite(path: Path, timeout_s: float = 1.0) -> str | None:
    """Why ``path`` cannot take a write now (locked, read-only, disk full), or None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError as exc:
        return f"{path.parent}: {exc}"
    if free < MIN_FREE_BYTES:
        return f"{path.parent}: only {free} bytes free on the disk"
    try:
        conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        return f"{path}: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"{path}: {exc}"
    finally:
        conn.close()
    return None


class EventLogProbe:
    """Cached answer to "can the event log take a write?".

    Parameters
    ----------
    log:
        The server's event log; a log without a ``path`` (not SQLite) is taken
        as writable.
    """

    def __init__(self, log: EventLog) -> None:
        path = getattr(log, "path", None)
        self.path = Path(path) if path is not None else None
        self._lock = asyncio.Lock()
        self._at = -float("inf")
        self._problem: str | None = None

    async def problem(self) -> str | None:
        """Why the log cannot take a write (None if it can), at most :data:`PROBE_S` old."""
        if self.path is None:
            return None
        async with self._lock:
            if time.monotonic() - self._at >= PROBE_S:
                self._problem = await run_in_threadpool(probe_sqlite, self.path)
                self._at = time.monotonic()
            return self._problem
