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
PostgreSQL log (:mod:`recops.serving.eventlog.postgres`) shares: a backend supplies
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

Where things are: the contract (:class:`EventLog`, keys and receipts) in ``_base``,
the writer thread shared by both backends in ``_group_commit``, rows to and from
records in ``_rows``, the SQLite backend in ``_sqlite``; the PostgreSQL backend is
:mod:`recops.serving.eventlog.postgres`, not imported here (it needs ``psycopg``).
"""

from recops.serving.eventlog._base import (
    DEFAULT_IDEMPOTENCY_WINDOW_S,
    EventLog,
    KeyReuseError,
    Receipt,
    WriteKey,
)
from recops.serving.eventlog._group_commit import GroupCommitLog
from recops.serving.eventlog._sqlite import SQLiteEventLog
from recops.serving.records import Activity, Assignment, ContextValue, Event, Exposure

__all__ = [
    "DEFAULT_IDEMPOTENCY_WINDOW_S",
    "Activity",
    "Assignment",
    "ContextValue",
    "Event",
    "EventLog",
    "Exposure",
    "GroupCommitLog",
    "KeyReuseError",
    "Receipt",
    "SQLiteEventLog",
    "WriteKey",
]
