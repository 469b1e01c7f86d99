"""The event log in PostgreSQL: the contract of :class:`~recops.serving.eventlog.SQLiteEventLog`.

Selected by ``event_log_url = "postgresql://..."`` (``RECOPS_EVENT_LOG_URL``); the
SQLite file stays the default. What holds, as for SQLite:

* **An acknowledged event is committed.** A write's future resolves after
  ``COMMIT`` returned (``synchronous_commit`` as the server sets it: ``on`` by
  default, so the commit is flushed to the WAL first).
* **Group commit.** One writer thread per process (:class:`GroupCommitLog`) takes
  whatever waits and writes it in one transaction: one ``INSERT ... SELECT FROM
  unnest(...)`` per table, whatever the number of rows; queued exposures wait up
  to ``exposure_delay_s`` for company, and their commits (when nothing else is in
  the batch) do not wait for the WAL flush; events never wait.
* **Assignments once** per ``(experiment, unit)`` (``ON CONFLICT DO NOTHING``),
  idempotency keys and client event ids in the same database, checked and claimed
  inside the write transaction, one window of them kept.

**Ids are in commit order, so followers read ``id > position`` and miss nothing.**
A PostgreSQL sequence hands out numbers at insert time, not at commit: a transaction
that took id 11 may commit after one that took id 12, and a follower that read 12
would then never read 11. Rather than a follower that tracks such gaps, every write
transaction takes one transaction-level advisory lock first
(``pg_advisory_xact_lock``, released when the commit is visible) and numbers its rows
``MAX(id) + 1, + 2, ...`` under it. Writers are therefore serialised across
processes and machines, each ones' batch committing whole before the next one
numbers its rows: ids grow with commit order, without gaps (a rolled-back
transaction numbered nothing that stays), exactly as SQLite's single writer gives.
The cost is one lock hand-over per group commit, which group commit amortises over
all the rows that waited; the lock is per schema, so logs in two schemas do not
wait for each other.

**Followers learn of new events by LISTEN/NOTIFY.** A transaction that writes
events notifies a channel of the schema; :meth:`PostgresEventLog.changed` reads what
arrived on its own connection without a round trip (a non-blocking read of the
socket), and knows its own process's commits at once (its own notices, signed with
the log's random signature, are skipped: they would say it twice). Another process's
commit arrives as a notification a fraction of a millisecond later, so a recommendation
served by another worker in that instant may not see it yet (SQLite's
``data_version`` has no such lag); a server whose online state is in Redis
(:mod:`recops.serving.state_redis`) reads each user's history from there and does
not depend on it.

**Readiness asks the database.** :class:`WriteProbe` (what ``/readyz`` calls, through
:meth:`PostgresEventLog.write_problem`) checks on a connection of its own, in one
round trip with 2 s timeouts, that the database answers and takes the log's writes.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import ConnStatus, TransactionStatus

from recops.postgres import connect, redact
from recops.serving.eventlog._base import (
    DEFAULT_IDEMPOTENCY_WINDOW_S,
    KeyReuseError,
    Receipt,
    WriteKey,
)
from recops.serving.eventlog._group_commit import GroupCommitLog, Job
from recops.serving.eventlog._rows import event_from_row, exposure_from_row
from recops.serving.records import Activity, Assignment, Event, Exposure

log = logging.getLogger("recops.serving")

__all__ = ["PostgresEventLog", "WriteProbe"]

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    id BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    timestamp BIGINT NOT NULL,
    context TEXT,
    request_id TEXT,
    event_id TEXT
)
""",
    """
CREATE TABLE IF NOT EXISTS exposures (
    id BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    timestamp BIGINT NOT NULL,
    unit TEXT NOT NULL,
    experiment TEXT,
    variant TEXT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    policy TEXT NOT NULL,
    slate TEXT NOT NULL
)
""",
    # seq: the order they were logged (read_assignments), as SQLite's rowid.
    """
CREATE TABLE IF NOT EXISTS assignments (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    experiment TEXT NOT NULL,
    unit TEXT NOT NULL,
    variant TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (experiment, unit)
)
""",
    """
CREATE TABLE IF NOT EXISTS request_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    accepted BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    created DOUBLE PRECISION NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS event_keys (
    event_id TEXT PRIMARY KEY,
    created DOUBLE PRECISION NOT NULL
)
""",
    # read_responses: the answers in id order, without scanning the other events.
    "CREATE INDEX IF NOT EXISTS events_responses ON events (id) WHERE request_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS exposures_experiment ON exposures (experiment, id)",
    "CREATE INDEX IF NOT EXISTS assignments_seq ON assignments (experiment, seq)",
    "CREATE INDEX IF NOT EXISTS request_keys_created ON request_keys (created)",
    "CREATE INDEX IF NOT EXISTS event_keys_created ON event_keys (created)",
)

#: The writers' lock: one per schema (the second key), so commit order is id order.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('recops.eventlog'), hashtext(current_schema()))"
_EVENT_COLUMNS = "user_id, item_id, event, value, timestamp, context, request_id, event_id"
_EVENT_TYPES = ("text", "text", "text", "float8", "int8", "text", "text", "text")
_EXPOSURE_COLUMNS = (
    "request_id, timestamp, unit, experiment, variant, model, version, policy, slate"
)
_EXPOSURE_TYPES = ("text", "int8", "text", "text", "text", "text", "text", "text", "text")


def _numbered_insert(table: str, columns: str, types: tuple[str, ...]) -> str:
    """Insert column arrays as rows numbered ``MAX(id) + 1, ...`` in array order."""
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    return (
        f"INSERT INTO {table} (id, {columns}) "
        f"SELECT base.id + u.n, {', '.join(f'u.{c.strip()}' for c in columns.split(','))} "
        f"FROM (SELECT COALESCE(MAX(id), 0) AS id FROM {table}) AS base, "
        f"unnest({arrays}) WITH ORDINALITY AS u({columns}, n)"
    )


_INSERT_EVENTS = _numbered_insert("events", _EVENT_COLUMNS, _EVENT_TYPES)
_INSERT_EXPOSURES = _numbered_insert("exposures", _EXPOSURE_COLUMNS, _EXPOSURE_TYPES)
_INSERT_ASSIGNMENTS = (
    "INSERT INTO assignments (experiment, unit, variant, timestamp) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int8[]) "
    "ON CONFLICT (experiment, unit) DO NOTHING"
)
_SELECT = f"SELECT id, {_EVENT_COLUMNS} FROM events"
_SELECT_EXPOSURE = f"SELECT id, {_EXPOSURE_COLUMNS} FROM exposures"
_FIND_KEY = (
    "SELECT fingerprint, accepted, duplicates FROM request_keys WHERE key = %s AND created >= %s"
)
_STORE_KEY = (
    "INSERT INTO request_keys (key, fingerprint, accepted, duplicates, created) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
    "fingerprint = excluded.fingerprint, accepted = excluded.accepted, "
    "duplicates = excluded.duplicates, created = excluded.created"
)
#: Returns the ids it claimed: new ones, and those older than the window.
_CLAIM_EVENTS = (
    "INSERT INTO event_keys (event_id, created) SELECT unnest(%s::text[]), %s "
    "ON CONFLICT (event_id) DO UPDATE SET created = excluded.created "
    "WHERE event_keys.created < %s RETURNING event_id"
)


#: One round trip: a standby, read-only transactions, or no INSERT right refuse writes.
_PROBE = (
    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
    "has_table_privilege('events', 'INSERT') AND has_table_privilege('exposures', 'INSERT')"
)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (what ``unnest`` of arrays takes)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


class _Connection:
    """One autocommit connection, opened again after it broke; use it under :attr:`lock`.

    Parameters
    ----------
    url:
        The database.
    connect_timeout_s:
        How long opening it may take.
    on_open:
        Called with each new connection (e.g. to LISTEN).
    """

    def __init__(
        self,
        url: str,
        connect_timeout_s: float,
        on_open: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.on_open = on_open
        self.lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = connect(self.url, self.connect_timeout_s)
            if self.on_open is not None:
                self.on_open(conn)
            self._conn = conn
        return conn

    def discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def is_open(self) -> bool:
        """Whether a connection is held (it may have broken since its last use)."""
        return self._conn is not None

    def query(self, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.get().execute(statement, args).fetchall()


class WriteProbe:
    """Whether a log's database takes writes now, asked on a connection of its own.

    One round trip per probe (:data:`_PROBE`: the database answers, is not a standby,
    does not make transactions read-only, and lets this role insert into the log's
    tables), on a connection kept open between probes: a new one each time would cost
    the server a backend process a second per worker. Opening it waits at most
    ``timeout_s`` (libpq's least is 2 s), and so does the query (``statement_timeout``).
    A connection that broke since the last probe (a server restart) is opened again,
    once, before the probe answers; a connection that cannot be opened is the answer.

    Parameters
    ----------
    url:
        The log's database (the tables are looked for in its schema).
    timeout_s:
        Longest wait for the connection and for the query.
    """

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.where = redact(url)
        self._statement_timeout_ms = max(1, round(timeout_s * 1000))
        self._conn = _Connection(url, timeout_s, self._on_open)

    def _on_open(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET statement_timeout = {self._statement_timeout_ms}")

    def _ask(self) -> tuple[Any, ...] | None:
        return self._conn.get().execute(_PROBE).fetchone()

    def problem(self) -> str | None:
        """Why the database cannot take the log's writes now, or None."""
        with self._conn.lock:
            try:
                reused = self._conn.is_open
                try:
                    row = self._ask()
                except psycopg.OperationalError:
                    if not reused:
                        raise
                    self._conn.discard()
                    row = self._ask()
            except psycopg.Error as exc:
                self._conn.discard()
                return f"{self.where}: {' '.join(str(exc).split())}"
        if row is None:
            return f"{self.where}: no answer to the probe"
        standby, read_only, can_insert = row
        if standby:
            return f"{self.where}: the server is a standby (in recovery), read-only"
        if read_only:
            return f"{self.where}: transactions are read-only (default_transaction_read_only)"
        if not can_insert:
            return f"{self.where}: this role may not insert into the event log's tables"
        return None

    def close(self) -> None:
        """Close the probe's connection."""
        with self._conn.lock:
            self._conn.discard()


class PostgresEventLog(GroupCommitLog):
    """Event log in a PostgreSQL database (its tables in the connection's schema).

    Parameters
    ----------
    url:
        ``postgresql://user:password@host:port/dbname`` (libpq's URL; ``?options=
        -csearch_path%3Dname`` puts the tables in another schema). The tables are
        created if missing.
    max_batch_rows, exposure_delay_s, exposure_flush_s, idempotency_window_s, clock:
        As in :class:`~recops.serving.eventlog.SQLiteEventLog`. Commits of queued
        exposures alone are asynchronous (``synchronous_commit = off``): the
        database flushes them within ``3 × wal_writer_delay`` (600 ms by default),
        and at least every ``exposure_flush_s`` a commit waits for its flush.
    connect_timeout_s:
        How long opening a connection may take; a connection that broke (a server
        restart) is opened again at its next use, and the writes of the batch that
        met the break fail with the error.
    """

    def __init__(
        self,
        url: str,
        *,
        max_batch_rows: int = 50_000,
        exposure_delay_s: float = 0.05,
        exposure_flush_s: float = 1.0,
        idempotency_window_s: float = DEFAULT_IDEMPOTENCY_WINDOW_S,
        clock: Callable[[], float] = time.time,
        connect_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(
            redact(url),
            max_batch_rows=max_batch_rows,
            exposure_delay_s=exposure_delay_s,
            exposure_flush_s=exposure_flush_s,
            idempotency_window_s=idempotency_window_s,
            clock=clock,
        )
        self.url = url
        self._writer_conn = _Connection(url, connect_timeout_s)
        # Opened here, not in the thread, so that a bad URL fails in the caller.
        conn = self._writer_conn.get()
        with self._transaction(conn):
            # Two workers starting together must not both create the tables.
            conn.execute(_LOCK)
            for statement in _SCHEMA:
                conn.execute(statement)
        schema = conn.execute("SELECT current_schema()").fetchone()
        self.schema = str(schema[0]) if schema else "public"
        self._channel = f"recops_events_{self.schema}"[:63]
        self._signature = secrets.token_hex(8)
        self._signature_bytes = self._signature.encode()
        self._notified = True
        # Commits of events by this log's writer (its thread alone counts them), and
        # how many changed() had seen.
        self._commits = 0
        self._commits_seen = 0
        self._watch = _Connection(url, connect_timeout_s, self._listen)
        self._reader = _Connection(url, connect_timeout_s)
        self._probe = WriteProbe(url)
        self._start_writer()

    @staticmethod
    @contextmanager
    def _transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
        conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- writing (the writer thread) -------------------------------------------------

    def _close_writer(self) -> None:
        self._writer_conn.discard()

    def _write(
        self, batch: list[Job], now: float, cutoff: float, durable: bool
    ) -> list[Receipt | KeyReuseError | None]:
        conn = self._writer_conn.get()
        with self._transaction(conn):
            if not durable:
                # Asynchronous commit for exposures nobody waits for: the database
                # flushes its WAL within 3 × wal_writer_delay; a crash of the database
                # may lose them, never corrupt anything, and never an acknowledged event.
                conn.execute("SET LOCAL synchronous_commit TO OFF")
            conn.execute(_LOCK)
            self._purge(conn, now, cutoff)
            events, outcomes = self._claim_all(conn, batch, now, cutoff)
            exposures = [row for job in batch for row in job.exposures]
            assignments = [row for job in batch for row in job.assignments]
            if events:
                conn.execute(_INSERT_EVENTS, _columns(events, len(_EVENT_TYPES)))
                # Signed, so that this log's watcher skips its own notices: it
                # counts its own commits already (below), when they happen.
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, self._signature))
            if exposures:
                conn.execute(_INSERT_EXPOSURES, _columns(exposures, len(_EXPOSURE_TYPES)))
            if assignments:
                conn.execute(_INSERT_ASSIGNMENTS, _columns(assignments, 4))
        if events:
            # This process's own commits are known at once, not when the notice comes.
            self._commits += 1
        return outcomes

    def _find_key(
        self, conn: psycopg.Connection[Any], key: str, cutoff: float
    ) -> tuple[str, int, int] | None:
        row = conn.execute(_FIND_KEY, (key, cutoff)).fetchone()
        return None if row is None else (row[0], int(row[1]), int(row[2]))

    def _claim_ids(
        self, conn: psycopg.Connection[Any], event_ids: list[str], now: float, cutoff: float
    ) -> set[str]:
        if not event_ids:
            return set()
        return {r[0] for r in conn.execute(_CLAIM_EVENTS, (event_ids, now, cutoff)).fetchall()}

    def _store_key(
        self, conn: psycopg.Connection[Any], key: WriteKey, receipt: Receipt, now: float
    ) -> None:
        conn.execute(
            _STORE_KEY, (key.key, key.fingerprint, receipt.accepted, receipt.duplicates, now)
        )

    def _delete_expired(
        self, conn: psycopg.Connection[Any], table: str, cutoff: float, limit: int
    ) -> int:
        statement = sql.SQL(
            "DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE created < %s "
            "LIMIT %s))"
        ).format(t=sql.Identifier(table))
        return conn.execute(statement, (cutoff, limit)).rowcount

    # --- reading ---------------------------------------------------------------------

    def read(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        rows = self._reader.query(
            f"{_SELECT} WHERE id > %s ORDER BY id LIMIT %s", (int(after_id), int(limit))
        )
        return [event_from_row(r) for r in rows]

    def read_responses(self, after_id: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        rows = self._reader.query(
            f"{_SELECT} WHERE request_id IS NOT NULL AND id > %s ORDER BY id LIMIT %s",
            (int(after_id), int(limit)),
        )
        return [event_from_row(r) for r in rows]

    def read_exposures(
        self, after_id: int = 0, limit: int = 10_000, experiment: str | None = None
    ) -> list[tuple[int, Exposure]]:
        where = "id > %s"
        args: list[object] = [int(after_id)]
        if experiment is not None:
            where += " AND experiment = %s"
            args.append(experiment)
        rows = self._reader.query(
            f"{_SELECT_EXPOSURE} WHERE {where} ORDER BY id LIMIT %s", (*args, int(limit))
        )
        return [exposure_from_row(r) for r in rows]

    def read_assignments(self, experiment: str) -> list[Assignment]:
        rows = self._reader.query(
            "SELECT experiment, unit, variant, timestamp FROM assignments "
            "WHERE experiment = %s ORDER BY seq",
            (experiment,),
        )
        return [Assignment(e, u, v, int(t)) for e, u, v, t in rows]

    def exposure_count(self, experiment: str | None = None) -> int:
        if experiment is None:
            rows = self._reader.query("SELECT COUNT(*) FROM exposures")
        else:
            rows = self._reader.query(
                "SELECT COUNT(*) FROM exposures WHERE experiment = %s", (experiment,)
            )
        return int(rows[0][0])

    def tail(self, n: int) -> list[Event]:
        if n <= 0:
            return []
        rows = self._reader.query(f"{_SELECT} ORDER BY id DESC LIMIT %s", (int(n),))
        return [event_from_row(r)[1] for r in reversed(rows)]

    def count(self) -> int:
        return int(self._reader.query("SELECT COUNT(*) FROM events")[0][0])

    # --- following -------------------------------------------------------------------

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        # Notifications that arrive during this connection's own queries.
        conn.add_notify_handler(self._on_notify)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self._notified = True  # what was committed while no one listened

    def _on_notify(self, _: psycopg.Notify) -> None:
        self._notified = True

    def last_id(self) -> int:
        (row,) = self._watch.query("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(row[0])

    def activity(self, after_id: int, limit: int = 10_000) -> list[Activity]:
        rows = self._watch.query(
            "SELECT id, user_id, item_id, event, timestamp FROM events "
            "WHERE id > %s ORDER BY id LIMIT %s",
            (int(after_id), int(limit)),
        )
        return [(int(i), u, item, e, int(t)) for i, u, item, e, t in rows]

    def changed(self) -> bool:
        with self._watch.lock:
            try:
                pgconn = self._watch.get().pgconn
                # Reads what the socket holds, without waiting or a round trip.
                pgconn.consume_input()
                while (notice := pgconn.notifies()) is not None:
                    if notice.extra != self._signature_bytes:
                        self._notified = True
                if pgconn.status != ConnStatus.OK:  # the server closed it
                    raise psycopg.OperationalError("the connection was closed by the server")
            except psycopg.Error as exc:
                log.warning("event log %s: cannot watch for new events: %s", self._where, exc)
                self._watch.discard()
                return True
            commits = self._commits
            changed = self._notified or commits != self._commits_seen
            self._notified, self._commits_seen = False, commits
            return changed

    def write_problem(self) -> str | None:
        """Whether the database answers and takes writes (:class:`WriteProbe`)."""
        return self._probe.problem()

    def close(self) -> None:
        if self._stop_writer():
            for conn in (self._watch, self._reader):
                with conn.lock:
                    conn.discard()
            self._probe.close()
