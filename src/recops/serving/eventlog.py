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
fsync instead of paying one each. That writer is :class:`GroupCommitLog`, which the
PostgreSQL log (:mod:`recops.serving.eventlog_postgres`) shares: a backend supplies
one transaction's SQL, the key checks' statements and the reads. Batches of queued
exposures alone are committed without an fsync of their own (``exposure_flush_s``):
the next acknowledged write flushes them with it, since the log is sequential.

Retries are stored once (:meth:`EventLog.submit_once`): a write may carry a client's
idempotency key (:class:`WriteKey`), and events may carry a client ``event_id`` in their
context. Both are remembered for a window (``idempotency_window_s``, a day by default)
in the same database, so a retry is recognised by every worker and after a restart; the
check and the write happen in one transaction, so two retries racing each other still
store the events once. Keys older than the window are deleted as writes go on: the
tables hold one window of keys, on disk, whatever the traffic before it.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from recops.serving.records import Activity, Assignment, ContextValue, Event, Exposure

log = logging.getLogger("recops.serving")

__all__ = [
    "Activity",
    "Assignment",
    "ContextValue",
    "Event",
    "EventLog",
    "Exposure",
    "KeyReuseError",
    "Receipt",
    "SQLiteEventLog",
    "WriteKey",
]

#: How long idempotency keys and event ids are remembered by default: a day, as
#: payment APIs do; a client retrying for longer than that is sending a new request.
DEFAULT_IDEMPOTENCY_WINDOW_S = 86_400.0
#: Free disk space below which a SQLite log counts as not writable.
MIN_FREE_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class WriteKey:
    """A client's idempotency key for one write, with a fingerprint of what it writes.

    Parameters
    ----------
    key:
        The client's key (the ``Idempotency-Key`` header).
    fingerprint:
        A digest of the write's content: the same key with another fingerprint is a
        client reusing a key for another request (:class:`KeyReuseError`).
    """

    key: str
    fingerprint: str


@dataclass(frozen=True)
class Receipt:
    """What the log did with one write of :meth:`EventLog.submit_once`.

    Parameters
    ----------
    accepted:
        Events of the write that are in the log, written now or before.
    duplicates:
        Of those, events whose ``event_id`` was already stored within the window
        (not written again).
    replayed:
        The write's key was seen within the window with the same fingerprint: nothing
        was written, and ``accepted`` and ``duplicates`` are those of the first write.
    skipped:
        Positions in the write of the events not written as duplicates (empty for a
        replay).
    """

    accepted: int
    duplicates: int
    replayed: bool
    skipped: tuple[int, ...] = ()


class KeyReuseError(ValueError):
    """An idempotency key seen within the window, with another request's content."""


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
        """Write served slates (and first assignments) now; the future says when durable.

        An assignment whose ``(experiment, unit)`` is already stored is ignored, so
        each unit's assignment is logged once whatever the number of workers.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the number of exposures written once they are durable.
        """

    @abstractmethod
    def queue_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> None:
        """Like :meth:`submit_exposures`, committed a little later together with others.

        For the request path: nothing to wait for, and many slates share one commit
        (a commit and a future per slate cost more CPU than writing it). Any later
        write of events commits them first, so the log keeps the submission order. A
        storage error is logged and counted in :attr:`dropped_exposures`.
        """

    @property
    def dropped_exposures(self) -> int:
        """Queued exposures a storage error kept out of the log."""
        return 0

    @abstractmethod
    def submit_once(self, events: Sequence[Event], key: WriteKey | None = None) -> Future[Receipt]:
        """Like :meth:`submit`, storing a retried write once.

        A ``key`` seen within the window replays the first write's receipt (or raises
        :class:`KeyReuseError` through the future when its fingerprint differs); an
        event whose context carries an ``event_id`` seen within the window is skipped.
        The future resolves once the write (or the key it replays) is durable.
        """

    def append(self, events: Sequence[Event]) -> int:
        """Write ``events`` and block until they are durable; returns how many were written."""
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

    def write_problem(self) -> str | None:
        """Why the storage cannot take a write now (locked, read-only, gone), or None.

        For ``/readyz`` (:mod:`recops.serving.health`), which calls it in a thread at
        most once a second: blocking, but bounded by the storage's own timeouts.
        Writes nothing. ``None`` too when the storage cannot tell.
        """
        return None

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
    slate TEXT NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS assignments (
    experiment TEXT NOT NULL,
    unit TEXT NOT NULL,
    variant TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (experiment, unit)
)
""",
    # Idempotency keys of writes (one window of them), with what the write did.
    """
CREATE TABLE IF NOT EXISTS request_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    created REAL NOT NULL
)
""",
    # Client event ids stored within the window (the ids stay in `events` for good).
    """
CREATE TABLE IF NOT EXISTS event_keys (
    event_id TEXT PRIMARY KEY,
    created REAL NOT NULL
)
""",
)
#: Added to logs written before events carried a request id (joins need the index) or
#: a client event id.
_MIGRATIONS = (
    ("events", "request_id", "ALTER TABLE events ADD COLUMN request_id TEXT"),
    ("events", "event_id", "ALTER TABLE events ADD COLUMN event_id TEXT"),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_request_id ON events (request_id) "
    "WHERE request_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS request_keys_created ON request_keys (created)",
    "CREATE INDEX IF NOT EXISTS event_keys_created ON event_keys (created)",
)

_INSERT = (
    "INSERT INTO events (user_id, item_id, event, value, timestamp, context, request_id, "
    "event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = (
    "SELECT id, user_id, item_id, event, value, timestamp, context, request_id, event_id "
    "FROM events"
)
_EXPOSURE_COLUMNS = (
    "request_id, timestamp, unit, experiment, variant, model, version, policy, slate"
)
_INSERT_EXPOSURES = f"INSERT INTO exposures ({_EXPOSURE_COLUMNS}) VALUES "
#: Rows per multi-row INSERT of exposures: the statements for 64, 32, ..., 1 rows are
#: prepared once (the connection's statement cache) and a batch needs at most seven
#: steps plus one per 64 rows. Each step releases and retakes the GIL, which the event
#: loop competes for: a step per row was a GIL round trip per row.
_EXPOSURE_CHUNKS = tuple(
    (size, _INSERT_EXPOSURES + ", ".join(["(" + ", ".join("?" * 9) + ")"] * size))
    for size in (64, 32, 16, 8, 4, 2, 1)
)
#: The per-position lists and the context of an exposure, stored as one JSON object
#: (``slate``): one encoding and one column instead of seven cost a third of the CPU.
_SLATE_KEYS = ("items", "propensities", "scores", "sources", "candidates", "candidate_scores")
_SELECT_EXPOSURE = f"SELECT id, {_EXPOSURE_COLUMNS} FROM exposures"
_INSERT_ASSIGNMENT = (
    "INSERT OR IGNORE INTO assignments (experiment, unit, variant, timestamp) VALUES (?, ?, ?, ?)"
)
_FIND_KEY = (
    "SELECT fingerprint, accepted, duplicates FROM request_keys WHERE key = ? AND created >= ?"
)
#: REPLACE: an expired key not purged yet is overwritten.
_STORE_KEY = (
    "INSERT OR REPLACE INTO request_keys (key, fingerprint, accepted, duplicates, created) "
    "VALUES (?, ?, ?, ?, ?)"
)
#: Changes a row (rowcount 1) only for an id that is new or older than the window.
_CLAIM_EVENT = (
    "INSERT INTO event_keys (event_id, created) VALUES (?, ?) ON CONFLICT (event_id) "
    "DO UPDATE SET created = excluded.created WHERE event_keys.created < ?"
)
#: Most expired keys deleted per table and commit, so a purge never stalls the writer.
_PURGE_ROWS = 10_000


@dataclass(slots=True)
class _Job:
    """One write: rows per table, and who waits for it.

    ``future`` is None for queued exposures (nobody waits for them, and they may wait
    for company). ``event_ids`` are ``(position, id)`` of the events that carry one;
    ``receipt`` says whether the future resolves to a :class:`Receipt` or a count.
    """

    events: list[tuple[Any, ...]]
    exposures: list[tuple[Any, ...]]
    assignments: list[tuple[Any, ...]]
    future: Future[Any] | None
    event_ids: list[tuple[int, str]]
    key: WriteKey | None = None
    receipt: bool = False

    def size(self) -> int:
        return len(self.events) + len(self.exposures) + len(self.assignments)


def _encode(value: object) -> str:
    # orjson: a slate's JSON in about 1 µs where the standard library takes 6-7, on
    # every served request.
    return orjson.dumps(value).decode()


def _dumps(value: object) -> str | None:
    return None if value is None else _encode(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(event: Event) -> tuple[str, str, str, float, int, str | None, str | None, str | None]:
    context = dict(event.context) if event.context else {}
    request_id = context.pop("request_id", None)
    event_id = context.pop("event_id", None)
    return (
        event.user_id,
        event.item_id,
        event.event,
        float(event.value),
        int(event.timestamp),
        _dumps(context) if context else None,
        None if request_id is None else str(request_id),
        None if event_id is None else str(event_id),
    )


def _event(row: tuple[Any, ...]) -> tuple[int, Event]:
    row_id, user_id, item_id, kind, value, timestamp, context, request_id, event_id = row
    parsed: dict[str, ContextValue] | None = json.loads(context) if context else None
    for name, column in (("request_id", request_id), ("event_id", event_id)):
        if column is not None:
            parsed = {**(parsed or {}), name: column}
    return row_id, Event(user_id, item_id, kind, value, timestamp, parsed)


def _event_job(events: Sequence[Event], key: WriteKey | None, receipt: bool) -> _Job:
    rows = [_row(e) for e in events]
    ids = [(position, row[7]) for position, row in enumerate(rows) if row[7] is not None]
    return _Job(rows, [], [], Future(), ids, key, receipt)


def _exposure_row(x: Exposure) -> tuple[Any, ...]:
    # Lists and dicts as given: the server builds them of plain str and float.
    slate: dict[str, Any] = {"items": x.items, "propensities": x.propensities, "scores": x.scores}
    for key, value in (
        ("sources", x.sources),
        ("candidates", x.candidates),
        ("candidate_scores", x.candidate_scores),
        ("context", x.context),
    ):
        if value is not None:
            slate[key] = value
    return (
        x.request_id,
        int(x.timestamp),
        x.unit,
        x.experiment,
        x.variant,
        x.model,
        x.version,
        _encode(x.policy),
        _encode(slate),
    )


def _exposure(row: tuple[Any, ...]) -> tuple[int, Exposure]:
    row_id, request_id, timestamp, unit, experiment, variant, model, version, policy, text = row
    slate = json.loads(text)
    return row_id, Exposure(
        request_id=request_id,
        timestamp=timestamp,
        unit=unit,
        model=model,
        version=version,
        policy=json.loads(policy),
        experiment=experiment,
        variant=variant,
        context=slate.get("context"),
        **{key: slate.get(key) for key in _SLATE_KEYS},
    )


def _insert_exposures(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert exposure rows in submission order, by multi-row statements."""
    start = 0
    for size, statement in _EXPOSURE_CHUNKS:
        while len(rows) - start >= size:
            conn.execute(statement, [v for row in rows[start : start + size] for v in row])
            start += size


class GroupCommitLog(EventLog):
    """The writing half of an event log: one writer thread, group commit, the futures.

    Submissions queue jobs; the writer takes whatever waits (:meth:`_gather`), stores
    it in one transaction of the backend (:meth:`_write`) and then resolves each
    job's future, so concurrent small requests share one commit. A backend
    implements :meth:`_write`, :meth:`_claim` (the idempotency checks), its reads
    and :meth:`close` (which calls :meth:`_stop_writer` first).

    Parameters
    ----------
    where:
        Names the log in messages (a file, or a database without its password).
    max_batch_rows, exposure_delay_s, exposure_flush_s, idempotency_window_s, clock:
        As in :class:`SQLiteEventLog`.
    """

    def __init__(
        self,
        where: str,
        *,
        max_batch_rows: int,
        exposure_delay_s: float,
        idempotency_window_s: float,
        clock: Callable[[], float],
        exposure_flush_s: float = 1.0,
    ) -> None:
        if not 0.0 < idempotency_window_s <= 366 * 86_400.0:
            raise ValueError(
                "`idempotency_window_s` must be in (0, 366 days] in seconds "
                f"(got {idempotency_window_s!r})"
            )
        self.idempotency_window_s = float(idempotency_window_s)
        self._clock = clock
        self._next_purge = 0.0
        if not 0.0 <= exposure_delay_s <= 10.0:
            raise ValueError(
                f"`exposure_delay_s` must be in [0, 10] seconds (got {exposure_delay_s!r})"
            )
        self.exposure_delay_s = exposure_delay_s
        if not 0.0 <= exposure_flush_s <= 60.0:
            raise ValueError(
                f"`exposure_flush_s` must be in [0, 60] seconds (got {exposure_flush_s!r})"
            )
        self.exposure_flush_s = exposure_flush_s
        self._flushed_at = time.monotonic()
        if isinstance(max_batch_rows, bool) or not isinstance(max_batch_rows, int):
            raise ValueError(f"`max_batch_rows` must be a positive int (got {max_batch_rows!r})")
        if max_batch_rows < 1:
            raise ValueError(f"`max_batch_rows` must be a positive int (got {max_batch_rows!r})")
        self.max_batch_rows = max_batch_rows
        self._where = where
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # Set by urgent submissions (and close) to end the writer's exposure wait.
        self._wake = threading.Event()
        # The queued job that queued exposures join until the writer takes it: one
        # job (and one queue put) per batch of exposures instead of one per slate.
        self._pending: _Job | None = None
        self._pending_lock = threading.Lock()
        self._dropped = 0
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None

    def _start_writer(self) -> None:
        """Start the writer thread (once the backend's writing connection is open)."""
        self._writer = threading.Thread(
            target=self._write_loop, name="recops-eventlog", daemon=True
        )
        self._writer.start()

    @abstractmethod
    def _write(
        self, batch: list[_Job], now: float, cutoff: float, durable: bool
    ) -> list[Receipt | KeyReuseError | None]:
        """Store ``batch`` in one transaction; what to answer each job (None: a count).

        ``durable``: the commit must reach the disk before it returns (a caller
        waits, or queued exposures have waited ``exposure_flush_s``); otherwise the
        backend may leave it in the operating system's care (it survives the
        process, not a power loss) until a later durable commit flushes it.

        Called by the writer thread only. On an error the transaction is rolled back
        and the error raised: every job of the batch fails with it.
        """

    @abstractmethod
    def _find_key(self, conn: Any, key: str, cutoff: float) -> tuple[str, int, int] | None:
        """``(fingerprint, accepted, duplicates)`` of ``key`` stored since ``cutoff``."""

    @abstractmethod
    def _claim_ids(self, conn: Any, event_ids: list[str], now: float, cutoff: float) -> set[str]:
        """Of distinct ``event_ids``, those new or older than ``cutoff``, claimed as of ``now``."""

    @abstractmethod
    def _store_key(self, conn: Any, key: WriteKey, receipt: Receipt, now: float) -> None:
        """Remember ``key`` with what its write did (replacing an expired entry)."""

    @abstractmethod
    def _delete_expired(self, conn: Any, table: str, cutoff: float, limit: int) -> int:
        """Delete at most ``limit`` keys created before ``cutoff`` from ``table``; how many."""

    def _claim(
        self, conn: Any, job: _Job, now: float, cutoff: float
    ) -> tuple[list[tuple[Any, ...]], Receipt | KeyReuseError]:
        """The event rows of ``job`` to write, and what to answer its caller.

        Inside the write transaction, so a key or an id is claimed by one write only.
        """
        if job.key is not None:
            found = self._find_key(conn, job.key.key, cutoff)
            if found is not None:
                fingerprint, accepted, duplicates = found
                if fingerprint != job.key.fingerprint:
                    return [], KeyReuseError(
                        f"idempotency key {job.key.key!r} was used for another request "
                        f"within the last {self.idempotency_window_s:g} s"
                    )
                return [], Receipt(accepted, duplicates, replayed=True)
        rows = job.events
        claimed = self._claim_ids(
            conn, list(dict.fromkeys(i for _, i in job.event_ids)), now, cutoff
        )
        # An id twice in one write: its first event is stored, the second skipped.
        skipped_at: list[int] = []
        for position, event_id in job.event_ids:
            if event_id in claimed:
                claimed.discard(event_id)
            else:
                skipped_at.append(position)
        skipped = tuple(skipped_at)
        if skipped:
            drop = set(skipped)
            rows = [row for position, row in enumerate(rows) if position not in drop]
        receipt = Receipt(len(job.events), len(skipped), False, skipped)
        if job.key is not None:
            self._store_key(conn, job.key, receipt, now)
        return rows, receipt

    def _purge(self, conn: Any, now: float, cutoff: float) -> None:
        """Delete keys older than the window: at most once a minute, a bounded batch."""
        if now < self._next_purge:
            return
        full = False
        for table in ("request_keys", "event_keys"):
            deleted = self._delete_expired(conn, table, cutoff, _PURGE_ROWS)
            full = full or deleted == _PURGE_ROWS
        # A full batch leaves more behind: purge again at the next commit.
        self._next_purge = now if full else now + min(60.0, self.idempotency_window_s)

    def _close_writer(self) -> None:
        """Release what the writer thread used (called by it as it ends)."""

    def _claim_all(
        self, conn: Any, batch: list[_Job], now: float, cutoff: float
    ) -> tuple[list[tuple[Any, ...]], list[Receipt | KeyReuseError | None]]:
        """The event rows of the whole batch to write, and each job's outcome."""
        events: list[tuple[Any, ...]] = []
        # None for exposures: most jobs, one per served slate, with no key to check.
        outcomes: list[Receipt | KeyReuseError | None] = []
        for job in batch:
            outcome = None
            if job.events or job.key is not None:
                rows, outcome = self._claim(conn, job, now, cutoff)
                events += rows
            outcomes.append(outcome)
        return events, outcomes

    def _enqueue(self, job: _Job) -> Future[Any]:
        future: Future[Any] = Future() if job.future is None else job.future
        if self._closed.is_set():
            future.set_exception(RuntimeError(f"event log {self._where} is closed"))
        elif job.size() == 0:
            future.set_result(Receipt(0, 0, False) if job.receipt else 0)
        else:
            self._queue.put(job)
            self._wake.set()
        return future

    def submit(self, events: Sequence[Event]) -> Future[int]:
        return self._enqueue(_event_job(events, None, receipt=False))

    def submit_once(self, events: Sequence[Event], key: WriteKey | None = None) -> Future[Receipt]:
        return self._enqueue(_event_job(events, key, receipt=True))

    def submit_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> Future[int]:
        assigned = [(a.experiment, a.unit, a.variant, int(a.timestamp)) for a in assignments]
        return self._enqueue(
            _Job([], [_exposure_row(x) for x in exposures], assigned, Future(), [])
        )

    def queue_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> None:
        if self._closed.is_set():
            self._dropped += len(exposures)
            log.error("event log %s is closed: %d exposures dropped", self._where, len(exposures))
            return
        # Encoded here: encoding them in the writer, 50 ms later, was measured to cost
        # more per request (their objects had gone cold by then).
        rows = [_exposure_row(x) for x in exposures]
        with self._pending_lock:
            job = self._pending
            if job is None:
                # Queued now, so it is ahead of any click on the exposures it takes.
                job = self._pending = _Job([], [], [], None, [])
                self._queue.put(job)
            job.exposures += rows
            for a in assignments:
                job.assignments.append((a.experiment, a.unit, a.variant, int(a.timestamp)))

    @property
    def dropped_exposures(self) -> int:
        return self._dropped

    def _write_loop(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stop = self._gather(first)
                self._commit(batch)
                if stop:
                    return
        finally:
            self._close_writer()

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """Group commit: what is waiting (up to the row cap) joins ``first``.

        An urgent job (events) commits with whatever is already queued. Exposures
        alone let the writer sleep up to ``exposure_delay_s`` first (an urgent
        submission wakes it): waking the thread per exposure cost more CPU than
        writing it. Returns the batch and whether the log was closed meanwhile.
        """
        if first.future is None and self.exposure_delay_s > 0:
            self._wake.wait(self.exposure_delay_s)
        self._wake.clear()
        batch = [first]
        rows = first.size()
        while rows < self.max_batch_rows:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._close_pending(batch)
                return batch, True
            batch.append(more)
            rows += more.size()
        self._close_pending(batch)
        return batch, False

    def _close_pending(self, batch: list[_Job]) -> None:
        """Exposures queued from now on go to a new job: the pending one is in ``batch``."""
        with self._pending_lock:
            if self._pending is not None and any(job is self._pending for job in batch):
                self._pending = None

    def _commit(self, batch: list[_Job]) -> None:
        now = self._clock()
        # Queued exposures alone need no flush of their own: the next acknowledged
        # write flushes them with it (the log is sequential), and without one they
        # are flushed within `exposure_flush_s`. The fsync of each 50 ms batch cost the
        # loaded server's writer about 1 of its 6-8 µs per exposure.
        moment = time.monotonic()
        durable = (
            any(job.future is not None for job in batch)
            or moment - self._flushed_at >= self.exposure_flush_s
        )
        try:
            outcomes = self._write(batch, now, now - self.idempotency_window_s, durable)
            if durable:
                self._flushed_at = moment
        except Exception as exc:  # the storage error goes to every waiting caller
            for job in batch:
                if job.future is None:
                    self._dropped += len(job.exposures)
                    log.error(
                        "%d queued exposures could not be stored: %s", len(job.exposures), exc
                    )
                else:
                    job.future.set_exception(exc)
            return
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future is None:
                continue
            if outcome is None:
                job.future.set_result(len(job.exposures))
            elif isinstance(outcome, KeyReuseError):
                job.future.set_exception(outcome)
            elif job.receipt:
                job.future.set_result(outcome)
            else:
                job.future.set_result(outcome.accepted - outcome.duplicates)

    def _stop_writer(self) -> bool:
        """Finish the pending writes and stop the writer; False if it was stopped before."""
        if self._closed.is_set():
            return False
        self._closed.set()
        self._queue.put(None)
        self._wake.set()
        if self._writer is not None:
            self._writer.join()
        return True


class SQLiteEventLog(GroupCommitLog):
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
    exposure_delay_s:
        Longest time a non-urgent exposure waits for others to share its commit.
        One commit per served slate cost about 300 µs of CPU (the fsync above all)
        against about 20 µs per row in a batch; 50 ms bounds what a killed process
        can lose and what the bandits' learning lags by.
    exposure_flush_s:
        Longest time committed queued exposures may stay unflushed. Their commits
        use ``synchronous=NORMAL`` (no fsync: they survive a killed process, not a
        power loss) until an acknowledged write, which fsyncs the WAL and with it
        everything committed before, or this bound; ``0`` fsyncs every commit.
    idempotency_window_s:
        How long write keys and event ids are remembered (see the module docstring);
        at most a year.
    clock:
        Wall clock of the window, in unix seconds (tests move it by hand).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch_rows: int = 50_000,
        synchronous: str = "FULL",
        exposure_delay_s: float = 0.05,
        exposure_flush_s: float = 1.0,
        idempotency_window_s: float = DEFAULT_IDEMPOTENCY_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            str(path),
            max_batch_rows=max_batch_rows,
            exposure_delay_s=exposure_delay_s,
            exposure_flush_s=exposure_flush_s,
            idempotency_window_s=idempotency_window_s,
            clock=clock,
        )
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"`synchronous` must be FULL, NORMAL or EXTRA (got {synchronous!r})")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous.upper()
        # The writer's current setting: `_write` lowers it to NORMAL for commits
        # nobody waits for, and restores it for the others.
        self._writing_sync = self._synchronous
        # Created here (not in the thread) so that a bad path fails in the caller.
        self._conn = self._connect()
        self._create_tables(self._conn)
        self._start_writer()
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

    def _close_writer(self) -> None:
        self._conn.close()

    def _write(
        self, batch: list[_Job], now: float, cutoff: float, durable: bool
    ) -> list[Receipt | KeyReuseError | None]:
        conn = self._conn
        wanted = self._synchronous if durable else "NORMAL"
        if wanted != self._writing_sync:
            conn.execute(f"PRAGMA synchronous={wanted}")
            self._writing_sync = wanted
        try:
            # IMMEDIATE: the key checks read before writing, and another process
            # committing in between would otherwise fail the upgrade to a write lock.
            conn.execute("BEGIN IMMEDIATE")
            self._purge(conn, now, cutoff)
            events, outcomes = self._claim_all(conn, batch, now, cutoff)
            # Statements per table, not per job (a statement per job cost more than its
            # rows); each table keeps submission order, and the tables commit together.
            if events:
                conn.executemany(_INSERT, events)
            _insert_exposures(conn, [row for job in batch for row in job.exposures])
            assignments = [row for job in batch for row in job.assignments]
            if assignments:
                conn.executemany(_INSERT_ASSIGNMENT, assignments)
            conn.execute("COMMIT")
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _find_key(
        self, conn: sqlite3.Connection, key: str, cutoff: float
    ) -> tuple[str, int, int] | None:
        found = conn.execute(_FIND_KEY, (key, cutoff)).fetchall()
        return found[0] if found else None

    def _claim_ids(
        self, conn: sqlite3.Connection, event_ids: list[str], now: float, cutoff: float
    ) -> set[str]:
        return {i for i in event_ids if conn.execute(_CLAIM_EVENT, (i, now, cutoff)).rowcount}

    def _store_key(
        self, conn: sqlite3.Connection, key: WriteKey, receipt: Receipt, now: float
    ) -> None:
        conn.execute(
            _STORE_KEY, (key.key, key.fingerprint, receipt.accepted, receipt.duplicates, now)
        )

    def _delete_expired(
        self, conn: sqlite3.Connection, table: str, cutoff: float, limit: int
    ) -> int:
        return conn.execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT rowid FROM {table} WHERE created < ? LIMIT ?)",
            (cutoff, limit),
        ).rowcount

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

    def write_problem(self, timeout_s: float = 1.0) -> str | None:
        """Whether the disk has room and the write lock can be had within ``timeout_s``.

        On a connection of its own: ``BEGIN IMMEDIATE`` takes the lock a writer
        needs, ``ROLLBACK`` gives it back without writing.
        """
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError as exc:
            return f"{self.path.parent}: {exc}"
        if free < MIN_FREE_BYTES:
            return f"{self.path.parent}: only {free} bytes free on the disk"
        try:
            conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            return f"{self.path}: {exc}"
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return f"{self.path}: {exc}"
        finally:
            conn.close()
        return None

    def close(self) -> None:
        if self._stop_writer():
            with self._watch_lock:
                self._watch.close()
