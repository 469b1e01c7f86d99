"""The contract of an event log: what a write's future promises, keys and receipts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from recops.serving.records import Activity, Assignment, Event, Exposure

#: How long idempotency keys and event ids are remembered by default: a day, as
#: payment APIs do; a client retrying for longer than that is sending a new request.
DEFAULT_IDEMPOTENCY_WINDOW_S = 86_400.0


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
