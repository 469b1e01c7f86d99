"""The embedded event log: a SQLite file in WAL mode, written by group commit."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from recops.serving.eventlog._base import (
    DEFAULT_IDEMPOTENCY_WINDOW_S,
    KeyReuseError,
    Receipt,
    WriteKey,
)
from recops.serving.eventlog._group_commit import GroupCommitLog, Job
from recops.serving.eventlog._rows import event_from_row, exposure_from_row
from recops.serving.records import Activity, Assignment, Event, Exposure

#: Free disk space below which a SQLite log counts as not writable.
MIN_FREE_BYTES = 16 * 1024**2


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


def _insert_exposures(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert exposure rows in submission order, by multi-row statements."""
    start = 0
    for size, statement in _EXPOSURE_CHUNKS:
        while len(rows) - start >= size:
            conn.execute(statement, [v for row in rows[start : start + size] for v in row])
            start += size


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
        self, batch: list[Job], now: float, cutoff: float, durable: bool
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
        return [event_from_row(r) for r in rows]

    def read_responses(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        with self._reader() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE request_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (int(after_id), int(limit)),
            ).fetchall()
        return [event_from_row(r) for r in rows]

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
        return [exposure_from_row(r) for r in rows]

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
        return [event_from_row(r)[1] for r in reversed(rows)]

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
