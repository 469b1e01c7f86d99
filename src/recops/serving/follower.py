"""The online state follows the event log, so every worker process sees every event.

One process applies an event to its state only after reading it back from the log,
whatever process wrote it: a worker that accepted ``POST /v1/events`` catches up
before it replies, and a worker about to recommend asks the log whether anything
was committed since it last looked (:meth:`~recops.serving.eventlog.EventLog.changed`,
a shared-memory read for SQLite) and catches up if so. An event acknowledged by any
worker is therefore in the state of the worker that serves the user's next request,
and no event is applied twice.
"""

from __future__ import annotations

from recops.serving.eventlog import EventLog
from recops.serving.state import POSITIVE_EVENTS, UserStateStore


class LogFollower:
    """Applies the log's events, in id order and once each, to a user state.

    Parameters
    ----------
    log:
        The shared event log.
    state:
        The process's online state.
    batch:
        Events read per query while catching up.
    """

    def __init__(self, log: EventLog, state: UserStateStore, batch: int = 10_000) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"`batch` must be a positive int (got {batch!r})")
        self.log = log
        self.state = state
        self.batch = batch
        #: Id of the last event applied (or skipped at warm-up).
        self.position = 0

    def warm(self, n_events: int) -> int:
        """Start from the log's end, replaying its last ``n_events`` events.

        Returns
        -------
        int
            Events replayed.
        """
        last = self.log.last_id()
        # Ids are contiguous (never deleted), so the last n end at `last` exactly;
        # events committed meanwhile are left for catch_up, which starts there.
        self.position = max(0, last - n_events)
        return self._apply_until(last)

    def poll(self) -> int:
        """Catch up if the log changed since the last poll; events applied."""
        return self.catch_up() if self.log.changed() else 0

    def catch_up(self) -> int:
        """Apply every event committed after :attr:`position`; events applied."""
        return self._apply_until(None)

    def _apply_until(self, last: int | None) -> int:
        applied = 0
        while last is None or self.position < last:
            rows = self.log.activity(self.position, self.batch)
            if last is not None:
                rows = [r for r in rows if r[0] <= last]
            if not rows:
                break
            self.state.record_many(
                (user, item, timestamp)
                for _, user, item, event, timestamp in rows
                if event in POSITIVE_EVENTS
            )
            self.position = rows[-1][0]
            applied += len(rows)
        return applied
