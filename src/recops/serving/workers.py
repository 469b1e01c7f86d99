"""What the worker processes of one ``recops serve --workers N`` share, besides the log.

Each worker holds its own model, index and user state; three things must still be
common to all of them, and go through a run folder that ``recops serve`` creates
fresh at every start (so nothing carries over from an earlier run):

* **Admin operations.** A switch, load or unload is done by the worker that got the
  request, then appended to an operations table in ``control.sqlite3``; every
  worker applies the operations it has not applied yet, in order, from a
  background task, and reports what it serves. The admin reply waits until every
  live worker has applied the operation, and lists the workers' states. A worker
  restarted by the supervisor replays the operations and ends up where the others
  are.
* **Metrics.** Each worker writes a snapshot of its Prometheus samples to
  ``metrics/<pid>.json``; ``GET /metrics`` on any worker sums them (counters and
  histograms add up; a gauge shows its largest value). Snapshots of workers that
  died are kept, so counters never go backwards.
* **The online state** follows the event log (:mod:`recops.serving.follower`).
* **Heartbeats.** Each worker touches ``heartbeat/<pid>`` from its event loop
  (:class:`Heartbeat`); the supervisor (:mod:`recops.serving.supervisor`) kills and
  replaces a worker whose heartbeat stopped (a hung or stopped process).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A worker that has not reported for this long is considered gone.
LIVE_S = 5.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ops ("
    " id INTEGER PRIMARY KEY, op TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,"
    " at REAL)",
    "CREATE TABLE IF NOT EXISTS workers ("
    " pid INTEGER PRIMARY KEY, applied INTEGER NOT NULL, serving TEXT, error TEXT,"
    " seen REAL NOT NULL)",
)

#: Operations a worker replays: load a version, serve it, or drop it from memory.
OPS = ("load", "switch", "unload")


@dataclass(frozen=True)
class Operation:
    """One admin operation, as published by the worker that carried it out.

    ``at`` (unix time) is when a ``switch`` takes effect on every worker: the
    second phase of a switch, published once every worker has loaded the version.
    """

    id: int
    op: str
    name: str
    version: str
    at: float | None = None


@dataclass(frozen=True)
class WorkerState:
    """What one worker reported last.

    Parameters
    ----------
    pid:
        Its process id.
    applied:
        Id of the last operation it applied (or failed to).
    serving:
        ``name/version`` it serves, or ``None``.
    error:
        Why its last operation failed, if it did.
    seen:
        Unix time of its last report.
    """

    pid: int
    applied: int
    serving: str | None
    error: str | None
    seen: float

    def stale(self, now: float) -> bool:
        """Not heard of (report or heartbeat) for :data:`LIVE_S`: hung, or gone."""
        return now - self.seen > LIVE_S


class Heartbeat:
    """A worker's heartbeat file: its mtime is the last beat, its text the worker's phase.

    Parameters
    ----------
    run_dir:
        The run folder.
    pid:
        The worker's process id (default: the current process).
    """

    def __init__(self, run_dir: Path, pid: int | None = None) -> None:
        self.path = heartbeat_path(run_dir, os.getpid() if pid is None else pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set_phase("starting")

    def set_phase(self, phase: str) -> None:
        """Say ``starting`` (lifespan running) or ``ready`` (serving); beats too."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(phase)
        tmp.replace(self.path)

    def beat(self) -> None:
        """One beat: the file's mtime becomes now."""
        os.utime(self.path)


def heartbeat_path(run_dir: Path, pid: int) -> Path:
    """Where worker ``pid`` of a run beats."""
    return Path(run_dir) / "heartbeat" / str(pid)


def last_beat(run_dir: Path, pid: int) -> tuple[float, str] | None:
    """Unix time of worker ``pid``'s last beat and its phase; None if it never beat."""
    path = heartbeat_path(run_dir, pid)
    try:
        return path.stat().st_mtime, path.read_text()
    except OSError:
        return None


class WorkerGroup:
    """One worker's handle on the run folder shared with the others.

    Parameters
    ----------
    run_dir:
        The folder ``recops serve`` made for this run.
    pid:
        This worker's process id (default: the current process).
    """

    def __init__(self, run_dir: Path, pid: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.pid = os.getpid() if pid is None else pid
        self.metrics_dir = self.run_dir / "metrics"
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.run_dir / "control.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._lock = threading.Lock()
        self.applied = 0

    # -- admin operations --------------------------------------------------------

    def publish(
        self, op: str, name: str, version: str, serving: str | None, at: float | None = None
    ) -> int:
        """Record an operation this worker has carried out (or scheduled); returns its id."""
        if op not in OPS:
            raise ValueError(f"`op` must be one of {OPS} (got {op!r})")
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO ops (op, name, version, at) VALUES (?, ?, ?, ?)",
                (op, name, version, at),
            )
            op_id = int(cursor.lastrowid or 0)
        self.report(op_id, serving, None)
        return op_id

    def pending(self) -> list[Operation]:
        """Operations published after the last one this worker applied, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, op, name, version, at FROM ops WHERE id > ? ORDER BY id",
                (self.applied,),
            ).fetchall()
        return [Operation(*row) for row in rows]

    def report(self, applied: int, serving: str | None, error: str | None) -> None:
        """Say which operation this worker applied last and what it serves."""
        self.applied = max(self.applied, applied)
        with self._lock:
            self._conn.execute(
                "INSERT INTO workers (pid, applied, serving, error, seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(pid) DO UPDATE SET applied = excluded.applied, "
                "serving = excluded.serving, error = excluded.error, seen = excluded.seen",
                (self.pid, self.applied, serving, error, time.time()),
            )

    def workers(self, live_only: bool = True) -> list[WorkerState]:
        """The workers' last reports (by default those heard of in the last :data:`LIVE_S`).

        A worker is heard of through its reports and its heartbeat (which beats
        while a version loads, when the reports wait); the supervisor drops the
        report of a worker it reaped, so every listed worker exists or just died.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT pid, applied, serving, error, seen FROM workers ORDER BY pid"
            ).fetchall()
        states = []
        for pid, applied, serving, error, seen in rows:
            beat = last_beat(self.run_dir, pid)
            heard = seen if beat is None else max(seen, beat[0])
            states.append(WorkerState(pid, applied, serving, error, heard))
        if live_only:
            now = time.time()
            states = [s for s in states if not s.stale(now)]
        return states

    def forget(self, pid: int) -> None:
        """Drop a dead worker's report (the supervisor does, once it reaped it)."""
        with self._lock:
            self._conn.execute("DELETE FROM workers WHERE pid = ?", (pid,))

    def last_op(self) -> int:
        """Id of the newest published operation (0 if none)."""
        with self._lock:
            ((last,),) = self._conn.execute("SELECT MAX(id) FROM ops").fetchall()
        return int(last or 0)

    def behind(self, op_id: int) -> list[WorkerState]:
        """Live workers that have not applied operation ``op_id`` yet."""
        return [w for w in self.workers() if w.applied < op_id]

    # -- metrics -----------------------------------------------------------------

    def write_metrics(self, snapshot: dict[str, object]) -> None:
        """Publish this worker's metrics snapshot (atomically: write, then rename)."""
        path = self.metrics_dir / f"{self.pid}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(path)

    def read_metrics(self) -> Iterable[dict[str, Any]]:
        """Every worker's last published snapshot, dead workers' included."""
        for path in sorted(self.metrics_dir.glob("*.json")):
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced as we read: the next scrape has it

    def close(self) -> None:
        with self._lock:
            self._conn.close()
