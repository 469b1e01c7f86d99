"""What the server logged, as the frames monitoring reads: exposures and events.

:func:`read_serving_log` pages through :class:`~recops.serving.eventlog.SQLiteEventLog`
(the embedded default; any :class:`~recops.serving.eventlog.EventLog` works with
:func:`from_event_log`) and keeps the rows of a time range. Exposures are in the layout
of :mod:`recops.experiments.logs` plus the request ``context``; events in the
interaction schema plus their ``request_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recops.data.schema import EVENT, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from recops.experiments.logs import EXPOSURE_COLUMNS
from recops.serving.eventlog import EventLog
from recops.serving.records import Event, Exposure

#: Columns of :attr:`ServingLog.exposures`.
LOGGED_EXPOSURE_COLUMNS = (*EXPOSURE_COLUMNS, "context")
#: Columns of :attr:`ServingLog.events`.
EVENT_COLUMNS = (USER_ID, ITEM_ID, EVENT, VALUE, TIMESTAMP, "request_id")
#: Rows read from the log per call.
_PAGE = 50_000


@dataclass(frozen=True)
class ServingLog:
    """Exposures (one row per served slate) and events, each in time order."""

    exposures: pd.DataFrame
    events: pd.DataFrame

    def between(self, start: int, end: int) -> ServingLog:
        """The rows with ``start <= timestamp < end``."""
        x, e = self.exposures, self.events
        return ServingLog(
            x[(x[TIMESTAMP] >= start) & (x[TIMESTAMP] < end)].reset_index(drop=True),
            e[(e[TIMESTAMP] >= start) & (e[TIMESTAMP] < end)].reset_index(drop=True),
        )

    def of_event(self, event: str) -> pd.DataFrame:
        """The events of one type (e.g. the clicks)."""
        return self.events[self.events[EVENT] == event].reset_index(drop=True)

    def responses(self) -> pd.DataFrame:
        """Events answering a slate, as :func:`recops.experiments.logs.shown_items` reads them."""
        answered = self.events[self.events["request_id"].notna()]
        return answered[["request_id", ITEM_ID, EVENT, TIMESTAMP]].reset_index(drop=True)

    def span(self) -> tuple[int, int] | None:
        """``(first, last + 1)`` timestamp of anything logged; None when empty."""
        stamps = np.concatenate(
            [
                self.exposures[TIMESTAMP].to_numpy(dtype=np.int64),
                self.events[TIMESTAMP].to_numpy(dtype=np.int64),
            ]
        )
        return (int(stamps.min()), int(stamps.max()) + 1) if stamps.size else None


def _in_range(stamp: int, since: int | None, until: int | None) -> bool:
    return (since is None or stamp >= since) and (until is None or stamp < until)


def from_event_log(
    log: EventLog, *, since: int | None = None, until: int | None = None
) -> ServingLog:
    """Every exposure and event of ``log`` with ``since <= timestamp < until`` (None: open)."""
    exposures: list[Exposure] = []
    after = 0
    while page := log.read_exposures(after, _PAGE):
        after = page[-1][0]
        exposures.extend(x for _, x in page if _in_range(x.timestamp, since, until))
    events: list[Event] = []
    after = 0
    while rows := log.read(after, _PAGE):
        after = rows[-1][0]
        events.extend(e for _, e in rows if _in_range(e.timestamp, since, until))
    x_frame = pd.DataFrame(
        [{c: getattr(x, c) for c in LOGGED_EXPOSURE_COLUMNS} for x in exposures],
        columns=list(LOGGED_EXPOSURE_COLUMNS),
    )
    e_frame = pd.DataFrame(
        [(e.user_id, e.item_id, e.event, e.value, e.timestamp, e.request_id) for e in events],
        columns=list(EVENT_COLUMNS),
    )
    x_frame[TIMESTAMP] = x_frame[TIMESTAMP].astype(np.int64)
    e_frame[TIMESTAMP] = e_frame[TIMESTAMP].astype(np.int64)
    return ServingLog(
        x_frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True),
        e_frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True),
    )


def read_serving_log(
    path: str | Path, *, since: int | None = None, until: int | None = None
) -> ServingLog:
    """The exposures and events of the event log at ``path`` in ``[since, until)``.

    ``path`` is a SQLite file or a ``postgresql://`` URL.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path`` (none is created).
    """
    from recops.serving.backends import event_log_at

    log = event_log_at(path)
    try:
        return from_event_log(log, since=since, until=until)
    finally:
        log.close()
