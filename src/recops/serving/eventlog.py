"""The durable, append-only event log behind ``POST /v1/events``.

The contract that matters: :meth:`EventLog.submit` returns a future that completes
only once the events are on disk, and the server acknowledges a request only after
that. So an acknowledged event survives the process being killed (SIGKILL) the
instant after the reply.

The same log holds the server's exposures (every served slate with its
propensities, :meth:`EventLog.submit_exposures`) and the experiment assignments
(each unit's first, logged once), written in the same group commits, so that a
click carrying a ``request_id`` is always committed after the exposure it answers.

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
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import closing
from pathlib import Path
from typing import Any

from recops.serving.records import Activity, Assignment, ContextValue, Event, Exposure

__all__ = [
    "Activity",
    "Assignment",
    "ContextValue",
    "Event",
    "EventLog",
    "Exposure",
    "SQLiteEventLog",
]


class EventLog(ABC):
    """Append-only storage of events and exposures, durable once a write's future is done."""

    @abstractmethod
    def submit(self, events: Sequence[Event]) -> Future[int]:
        """Queue ``events`` for writing.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the number of events written once they are durable, or
            raises the storage error.
        """

    @abstractmethod
    def submit_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> Future[int]:
        """Queue served slates (and first assignments) for writing.

        An assignment whose ``(experiment, unit)`` is already stored is ignored, so
        each unit's assignment is logged once whatever the number of workers.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the number of exposures written once they are durable.
        """

    def append(self, events: Sequence[Event]) -> int:
        """Write ``events`` and block until they are durable; returns how many."""
        return self.submit(events).result()

    @abstractmethod
    def read(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        """Events with an id above ``after_id``, oldest first, as ``(id, event)``."""

    @abstractmethod
    def read_responses(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        """Like :meth:`read`, only the events that carry a ``request_id``."""

    @abstractmethod
    def read_exposures(
        self, after_id: int = 0, limit: int = 10_000, experiment: str | None = None
    ) -> list[tuple[int, Exposure]]:
        """Exposures with an id above ``after_id`` (of one experiment if given), oldest first."""

    @abstractmethod
    def read_assignments(self, experiment: str) -> list[Assignment]:
        """Every unit's first assignment in ``experiment``, in the order they were logged."""

    @abstractmethod
    def exposure_count(self, experiment: str | None = None) -> int:
        """Exposures stored (of one experiment if given)."""

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


_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp INTEGER NOT NULL,
    context TEXT
)
""",
    """
CREATE TABLE IF NOT EXISTS exposures (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    timestamp INTEGER NOT NULL,
    unit TEXT NOT NULL,
    experiment TEXT,
    variant TEXT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    policy TEXT NOT NULL,
    items TEXT NOT NULL,
    propensities TEXT NOT NULL,
    scores TEXT NOT NULL,
    sources TEXT,
    candidates TEXT,
    candidate_scores TEXT,
    context TEXT
)
""",
    "CREATE INDEX IF NOT EXISTS exposures_experiment ON exposures (experiment, id)",
    """
CREATE TABLE IF NOT EXISTS assignments (
    experiment TEXT NOT NULL,
    unit TEXT NOT NULL,
    variant TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (experiment, unit)
)
""",
)
#: Added to logs written before events carried a request id (joins need the index).
_MIGRATIONS = (("events", "request_id", "ALTER TABLE events ADD COLUMN request_id TEXT"),)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_request_id ON events (request_id) "
    "WHERE request_id IS NOT NULL",
)

_INSERT = (
    "INSERT INTO events (user_id, item_id, event, value, timestamp, context, request_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = "SELECT id, user_id, item_id, event, value, timestamp, context, request_id FROM events"
_EXPOSURE_COLUMNS = (
    "request_id, timestamp, unit, experiment, variant, model, version, policy, items, "
    "propensities, scores, sources, candidates, candidate_scores, context"
)
_INSERT_EXPOSURE = f"INSERT INTO exposures ({_EXPOSURE_COLUMNS}) VALUES ({', '.join('?' * 15)})"
_SELECT_EXPOSURE = f"SELECT id, {_EXPOSURE_COLUMNS} FROM exposures"
_INSERT_ASSIGNMENT = (
    "INSERT OR IGNORE INTO assignments (experiment, unit, variant, timestamp) VALUES (?, ?, ?, ?)"
)

#: A write job: event rows, or exposure rows plus assignment rows, and its future.
_Job = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], Future[int]]


def _dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(event: Event) -> tuple[str, str, str, float, int, str | None, str | None]:
    context = dict(event.context) if event.context else {}
    request_id = context.pop("request_id", None)
    return (
        event.user_id,
        event.item_id,
        event.event,
        float(event.value),
        int(event.timestamp),
        _dumps(context) if context else None,
        None if request_id is None else str(request_id),
    )


def _event(row: tuple[Any, ...]) -> tuple[int, Event]:
    row_id, user_id, item_id, kind, value, timestamp, context, request_id = row
    parsed: dict[str, ContextValue] | None = json.loads(context) if context else None
    if request_id is not None:
        parsed = {**(parsed or {}), "request_id": request_id}
    return row_id, Event(user_id, item_id, kind, value, timestamp, parsed)


def _exposure_row(x: Exposure) -> tuple[Any, ...]:
    return (
        x.request_id,
        int(x.timestamp),
        x.unit,
        x.experiment,
        x.variant,
        x.model,
        x.version,
        _dumps(dict(x.policy)),
        _dumps(list(x.items)),
        _dumps([float(p) for p in x.propensities]),
        _dumps([float(s) for s in x.scores]),
        None if x.sources is None else _dumps(list(x.sources)),
        None if x.candidates is None else _dumps(list(x.candidates)),
        None if x.candidate_scores is None else _dumps([float(s) for s in x.candidate_scores]),
        None if x.context is None else _dumps(dict(x.context)),
    )


def _exposure(row: tuple[Any, ...]) -> tuple[int, Exposure]:
    (row_id, request_id, timestamp, unit, experiment, variant, model, version, policy, items,
     propensities, scores, sources, candidates, candidate_scores, context) = row  # fmt: skip
    return row_id, Exposure(
        request_id=request_id,
        timestamp=timestamp,
        unit=unit,
        model=model,
        version=version,
        policy=json.loads(policy),
        items=json.loads(items),
        propensities=json.loads(propensities),
        scores=json.loads(scores),
        experiment=experiment,
        variant=variant,
        sources=_loads(sources),
        candidates=_loads(candidates),
        candidate_scores=_loads(candidate_scores),
        context=_loads(context),
    )


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
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        # Created here (not in the thread) so that a bad path fails in the caller.
        conn = self._connect()
        self._create_tables(conn)
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

    @staticmethod
    def _create_tables(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            conn.execute(statement)
        for table, column, alter in _MIGRATIONS:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                conn.execute(alter)
        for statement in _INDEXES:
            conn.execute(statement)
        conn.execute("COMMIT")

    def _enqueue(self, job: _Job, n: int) -> Future[int]:
        future = job[3]
        if self._closed.is_set():
            future.set_exception(RuntimeError(f"event log {self.path} is closed"))
        elif n == 0 and not job[2]:
            future.set_result(0)
        else:
            self._queue.put(job)
        return future

    def submit(self, events: Sequence[Event]) -> Future[int]:
        return self._enqueue(([_row(e) for e in events], [], [], Future()), len(events))

    def submit_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> Future[int]:
        job: _Job = (
            [],
            [_exposure_row(x) for x in exposures],
            [(a.experiment, a.unit, a.variant, int(a.timestamp)) for a in assignments],
            Future(),
        )
        return self._enqueue(job, len(exposures))

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                rows = _size(first)
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
                    rows += _size(more)
                self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            conn.execute("BEGIN")
            # In submission order, so an exposure precedes the clicks that answer it.
            for events, exposures, assignments, _ in batch:
                if events:
                    conn.executemany(_INSERT, events)
                if exposures:
                    conn.executemany(_INSERT_EXPOSURE, exposures)
                if assignments:
                    conn.executemany(_INSERT_ASSIGNMENT, assignments)
            conn.execute("COMMIT")
        except Exception as exc:  # the storage error goes to every waiting caller
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for *_, future in batch:
                future.set_exception(exc)
            return
        for events, exposures, _, future in batch:
            future.set_result(len(events) or len(exposures))

    def read(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        with self._reader() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (int(after_id), int(limit))
            ).fetchall()
        return [_event(r) for r in rows]

    def read_responses(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        with self._reader() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE request_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (int(after_id), int(limit)),
            ).fetchall()
        return [_event(r) for r in rows]

    def read_exposures(
        self, after_id: int = 0, limit: int = 10_000, experiment: str | None = None
    ) -> list[tuple[int, Exposure]]:
        where = "id > ?"
        args: list[object] = [int(after_id)]
        if experiment is not None:
            where += " AND experiment = ?"
            args.append(experiment)
        with self._reader() as conn:
            rows = conn.execute(
                f"{_SELECT_EXPOSURE} WHERE {where} ORDER BY id LIMIT ?", (*args, int(limit))
            ).fetchall()
        return [_exposure(r) for r in rows]

    def read_assignments(self, experiment: str) -> list[Assignment]:
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT experiment, unit, variant, timestamp FROM assignments "
                "WHERE experiment = ? ORDER BY rowid",
                (experiment,),
            ).fetchall()
        return [Assignment(*r) for r in rows]

    def exposure_count(self, experiment: str | None = None) -> int:
        with self._reader() as conn:
            if experiment is None:
                row = conn.execute("SELECT COUNT(*) FROM exposures").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM exposures WHERE experiment = ?", (experiment,)
                ).fetchone()
        return int(row[0])

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


def _size(job: _Job) -> int:
    return len(job[0]) + len(job[1]) + len(job[2])
