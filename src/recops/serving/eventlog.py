"""The durable, append-only event log behind ``POST /v1/events``.

The contract that matters: :meth:`EventLog.submit` returns a future that completes
only once the events are on disk, and the server acknowledges a request only after
that. So an acknowledged event survives the process being killed (SIGKILL) the
instant after the reply.

:class:`SQLiteEventLog` is the embedded default. One writer thread owns the
connection and does *group commit*: whatever arrived while the previous transaction
was being written goes into the next one, so concurrent small requests share one
fsync instead of paying one each. The interface is small (submit, read, tail,
count, close) so that a PostgreSQL log can replace it without touching the server.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ContextValue = str | int | float | bool | None


@dataclass(frozen=True)
class Event:
    """One piece of feedback, in the interaction schema of :mod:`recops.data.schema`.

    Parameters
    ----------
    user_id, item_id:
        Who did what to which item.
    event:
        The event type (``impression``, ``click``, ...).
    value:
        The event's value (1.0 for a click, the rating for a rating, ...).
    timestamp:
        Unix seconds, UTC.
    context:
        Optional context columns (``position``, ``propensity``, ``request_id``, ...),
        carried along untouched.
    """

    user_id: str
    item_id: str
    event: str
    value: float
    timestamp: int
    context: Mapping[str, ContextValue] | None = None


#: ``(id, user_id, item_id, event, timestamp)``: an event as the online state sees it.
Activity = tuple[int, str, str, str, int]


class EventLog(ABC):
    """Append-only storage of events; appends are durable once their future is done."""

    @abstractmethod
    def submit(self, events: Sequence[Event]) -> Future[int]:
        """Queue ``events`` for writing.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the number of events written once they are durable, or
            raises the storage error.
        """

    def append(self, events: Sequence[Event]) -> int:
        """Write ``events`` and block until they are durable; returns how many."""
        return self.submit(events).result()

    @abstractmethod
    def read(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        """Events with an id above ``after_id``, oldest first, as ``(id, event)``."""

    @abstractmethod
    def tail(self, n: int) -> list[Event]:
        """The last ``n`` events, oldest first."""

    @abstractmethod
    def last_id(self) -> int:
        """Id of the newest event (0 when empty); ids grow with commit order."""

    @abstractmethod
    def activity(self, after_id: int, limit: int = 10_000) -> list[Activity]:
        """What the online state needs of the events above ``after_id``, oldest first.

        A lean :meth:`read` for processes that follow the log: ``(id, user_id,
        item_id, event, timestamp)`` tuples, without values and contexts.
        """

    def changed(self) -> bool:
        """Whether events may have been committed, by any process, since the last call.

        Cheap enough to ask on every request; ``True`` when the storage cannot tell.
        """
        return True

    @abstractmethod
    def count(self) -> int:
        """Number of events stored."""

    @abstractmethod
    def close(self) -> None:
        """Finish pending writes and release the storage."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp INTEGER NOT NULL,
    context TEXT
)
"""

_INSERT = (
    "INSERT INTO events (user_id, item_id, event, value, timestamp, context) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT = "SELECT id, user_id, item_id, event, value, timestamp, context FROM events"

_Pending = tuple[Sequence[Event], Future[int]]


def _row(event: Event) -> tuple[str, str, str, float, int, str | None]:
    context = json.dumps(dict(event.context), separators=(",", ":")) if event.context else None
    return (
        event.user_id,
        event.item_id,
        event.event,
        float(event.value),
        int(event.timestamp),
        context,
    )


def _event(row: tuple[int, str, str, str, float, int, str | None]) -> tuple[int, Event]:
    row_id, user_id, item_id, kind, value, timestamp, context = row
    parsed = json.loads(context) if context else None
    return row_id, Event(user_id, item_id, kind, value, timestamp, parsed)


class SQLiteEventLog(EventLog):
    """Event log in a SQLite file in WAL mode with ``synchronous=FULL``.

    Parameters
    ----------
    path:
        The database file; created with its parent folder if missing.
    max_batch_rows:
        Most rows per transaction; larger submissions are never split, so one
        request's events are committed atomically.
    synchronous:
        SQLite's ``synchronous`` pragma. ``FULL`` fsyncs the WAL at every commit, so
        an acknowledged event survives a power loss as well as a killed process;
        ``NORMAL`` survives a killed process only.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch_rows: int = 50_000,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"`synchronous` must be FULL, NORMAL or EXTRA (got {synchronous!r})")
        if isinstance(max_batch_rows, bool) or not isinstance(max_batch_rows, int):
            raise ValueError(f"`max_batch_rows` must be a positive int (got {max_batch_rows!r})")
        if max_batch_rows < 1:
            raise ValueError(f"`max_batch_rows` must be a positive int (got {max_batch_rows!r})")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_batch_rows = max_batch_rows
        self._synchronous = synchronous.upper()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        # Created here (not in the thread) so that a bad path fails in the caller.
        conn = self._connect()
        conn.execute(_SCHEMA)
        conn.commit()
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="recops-eventlog", daemon=True
        )
        self._writer.start()
        # One long-lived connection for followers: `PRAGMA data_version` only tells
        # a connection about commits made since its own previous call.
        self._watch = self._connect()
        self._watch_lock = threading.Lock()
        self._data_version: int | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def submit(self, events: Sequence[Event]) -> Future[int]:
        future: Future[int] = Future()
        if self._closed.is_set():
            future.set_exception(RuntimeError(f"event log {self.path} is closed"))
            return future
        if not events:
            future.set_result(0)
            return future
        self._queue.put((events, future))
        return future

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                rows = len(first[0])
                stop = False
                # Group commit: take everything already waiting, up to the row cap.
                while rows < self.max_batch_rows:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                    rows += len(more[0])
                self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        try:
            conn.execute("BEGIN")
            for events, _ in batch:
                conn.executemany(_INSERT, [_row(e) for e in events])
            conn.execute("COMMIT")
        except Exception as exc:  # the storage error goes to every waiting caller
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(exc)
            return
        for events, future in batch:
            future.set_result(len(events))

    def read(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        with self._reader() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (int(after_id), int(limit))
            ).fetchall()
        return [_event(r) for r in rows]

    def tail(self, n: int) -> list[Event]:
        if n <= 0:
            return []
        with self._reader() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY id DESC LIMIT ?", (int(n),)).fetchall()
        return [_event(r)[1] for r in reversed(rows)]

    def last_id(self) -> int:
        with self._watch_lock:
            # fetchall, not fetchone: a statement left unfinished would hold its
            # read snapshot open, and this connection would stop seeing new commits.
            (row,) = self._watch.execute("SELECT MAX(id) FROM events").fetchall()
        return int(row[0] or 0)

    def activity(self, after_id: int, limit: int = 10_000) -> list[Activity]:
        with self._watch_lock:
            rows = self._watch.execute(
                "SELECT id, user_id, item_id, event, timestamp FROM events "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (int(after_id), int(limit)),
            ).fetchall()
        return rows

    def changed(self) -> bool:
        with self._watch_lock:
            ((version,),) = self._watch.execute("PRAGMA data_version").fetchall()
            changed = version != self._data_version
            self._data_version = version
        return changed

    def count(self) -> int:
        with self._reader() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def _reader(self) -> closing[sqlite3.Connection]:
        # A short-lived read connection; WAL lets it read while the writer writes.
        return closing(self._connect())

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(None)
        self._writer.join()
        with self._watch_lock:
            self._watch.close()
