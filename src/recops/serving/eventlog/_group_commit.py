"""The writing half of an event log: one writer thread, group commit, the futures."""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from recops.serving.eventlog._base import EventLog, KeyReuseError, Receipt, WriteKey
from recops.serving.eventlog._rows import event_row, exposure_row
from recops.serving.records import Assignment, Event, Exposure

log = logging.getLogger("recops.serving")

#: Most expired keys deleted per table and commit, so a purge never stalls the writer.
_PURGE_ROWS = 10_000


@dataclass(slots=True)
class Job:
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


def event_job(events: Sequence[Event], key: WriteKey | None, receipt: bool) -> Job:
    """The job writing ``events`` (``receipt``: its future resolves to a :class:`Receipt`)."""
    rows = [event_row(e) for e in events]
    ids = [(position, row[7]) for position, row in enumerate(rows) if row[7] is not None]
    return Job(rows, [], [], Future(), ids, key, receipt)


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
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # Set by urgent submissions (and close) to end the writer's exposure wait.
        self._wake = threading.Event()
        # The queued job that queued exposures join until the writer takes it: one
        # job (and one queue put) per batch of exposures instead of one per slate.
        self._pending: Job | None = None
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
        self, batch: list[Job], now: float, cutoff: float, durable: bool
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
        self, conn: Any, job: Job, now: float, cutoff: float
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
        self, conn: Any, batch: list[Job], now: float, cutoff: float
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

    def _enqueue(self, job: Job) -> Future[Any]:
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
        return self._enqueue(event_job(events, None, receipt=False))

    def submit_once(self, events: Sequence[Event], key: WriteKey | None = None) -> Future[Receipt]:
        return self._enqueue(event_job(events, key, receipt=True))

    def submit_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> Future[int]:
        assigned = [(a.experiment, a.unit, a.variant, int(a.timestamp)) for a in assignments]
        return self._enqueue(Job([], [exposure_row(x) for x in exposures], assigned, Future(), []))

    def queue_exposures(
        self, exposures: Sequence[Exposure], assignments: Sequence[Assignment] = ()
    ) -> None:
        if self._closed.is_set():
            self._dropped += len(exposures)
            log.error("event log %s is closed: %d exposures dropped", self._where, len(exposures))
            return
        # Encoded here: encoding them in the writer, 50 ms later, was measured to cost
        # more per request (their objects had gone cold by then).
        rows = [exposure_row(x) for x in exposures]
        with self._pending_lock:
            job = self._pending
            if job is None:
                # Queued now, so it is ahead of any click on the exposures it takes.
                job = self._pending = Job([], [], [], None, [])
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

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
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

    def _close_pending(self, batch: list[Job]) -> None:
        """Exposures queued from now on go to a new job: the pending one is in ``batch``."""
        with self._pending_lock:
            if self._pending is not None and any(job is self._pending for job in batch):
                self._pending = None

    def _commit(self, batch: list[Job]) -> None:
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
