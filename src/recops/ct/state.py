"""The controller's durable state: one small state machine per model, its cycles, its decisions.

::

    idle ──trigger──► training ──gate passed──► gated ──experiment started──► experimenting
      ▲                  │  └─first model──► promoted                             │
      │                  └─gate refused / training failed──► rejected ◄─don't ship┤
      │                                                                  ship ────┘
      │                                    promoted ──watch passed──► idle
      └────────────── rejected, rolled_back ◄──guardrail failed── promoted

A *cycle* is one pass from a trigger to its outcome (``promoted``, ``rejected``,
``rolled_back``): what fired and why, the data snapshot, the pipeline run, the
registered version, the experiment, the watch. A *decision* is one transition with
its reason; decisions are append-only (triggers refuse updates and deletes).

Embedded, everything is in a SQLite file beside the event log (:class:`StateStore`;
never the event log's file itself: a training holds the controller's lock for
minutes, and the server must keep writing). Beside a PostgreSQL event log it is
in the log's database (:class:`~recops.ct.state_postgres.PostgresStateStore`);
:func:`open_state_store` picks one from the target. Both run the code of
:class:`BaseStateStore`; they differ in connecting, the column types, the
append-only triggers, how a write transaction queues and how the lock is held.
Each transition is one write transaction that checks the state it leaves (SQLite's
``BEGIN IMMEDIATE``; an advisory transaction lock in PostgreSQL), so a controller
killed at any point finds the last transition it finished; the action of the next
one is repeated, and every action is idempotent. :meth:`BaseStateStore.exclusive`
keeps a second controller of the same state from running a step at the same time
(an ``flock`` of the file, or a PostgreSQL session advisory lock: released by the
kernel when a process dies, by the server when its connection does).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self, get_args

from recops.postgres import is_postgres_url
from recops.sqlite import immediate

State = Literal["idle", "training", "gated", "experimenting", "promoted", "rejected", "rolled_back"]
STATES: tuple[str, ...] = get_args(State)
#: The transitions the controller makes; anything else is a bug, refused.
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("idle", "training"),
        ("training", "gated"),
        ("training", "promoted"),
        ("training", "rejected"),
        ("gated", "experimenting"),
        ("gated", "rejected"),
        ("experimenting", "promoted"),
        ("experimenting", "rejected"),
        ("promoted", "idle"),
        ("promoted", "rolled_back"),
        ("rejected", "idle"),
        ("rolled_back", "idle"),
    }
)
#: Observations that change no state (an alias moved by someone else).
NOTE = "note"

#: The tables, in either backend; ``{int}`` and ``{real}`` are its column types.
TABLES = """
CREATE TABLE IF NOT EXISTS controller (
    model TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    cycle {int},
    champion TEXT,
    champion_since {real},
    last_training {real},
    watermark {int} NOT NULL DEFAULT 0,
    last_check TEXT,
    updated_at {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS cycles (
    id {int} PRIMARY KEY,
    model TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_at {real} NOT NULL,
    watermark {int} NOT NULL,
    snapshot TEXT,
    overrides TEXT NOT NULL DEFAULT '{{}}',
    champion TEXT,
    champion_folder TEXT,
    run_id TEXT,
    version TEXT,
    folder TEXT,
    gate TEXT,
    experiment TEXT,
    experiment_started_at {real},
    watch TEXT,
    watch_started_at {real},
    outcome TEXT,
    finished_at {real}
);
CREATE TABLE IF NOT EXISTS decisions (
    id {int} PRIMARY KEY,
    model TEXT NOT NULL,
    cycle {int},
    at {real} NOT NULL,
    wall {real} NOT NULL,
    state_from TEXT NOT NULL,
    state_to TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
_SQLITE_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
"""
_SQLITE_SCHEMA = TABLES.format(int="INTEGER", real="REAL") + _SQLITE_TRIGGERS
_CONTROLLER = (
    "model, state, cycle, champion, champion_since, last_training, watermark, last_check, "
    "updated_at"
)
_CYCLE_FIELDS = (
    "id", "model", "trigger", "reason", "started_at", "watermark", "snapshot", "overrides",
    "champion", "champion_folder", "run_id", "version", "folder", "gate", "experiment",
    "experiment_started_at", "watch", "watch_started_at", "outcome", "finished_at",
)  # fmt: skip
_DECISION_FIELDS = (
    "id", "model", "cycle", "at", "wall", "state_from", "state_to", "action", "reason", "detail",
)  # fmt: skip


class StateError(RuntimeError):
    """A transition the state machine does not allow, or a state changed meanwhile."""


class ControllerBusyError(RuntimeError):
    """Another controller holds the lock of the same state (file or database)."""


@dataclass(frozen=True)
class ControllerState:
    """Where one model's controller is.

    Parameters
    ----------
    state:
        The state machine's state.
    cycle:
        The cycle in flight (None when idle).
    champion, champion_since:
        The champion the controller knows and when (its clock) it began serving
        alone: the start of the drift trigger's reference window.
    last_training:
        When (its clock) the last training was triggered.
    watermark:
        The event log's last event id in the last training's snapshot.
    last_check:
        What the last round found (triggers, analysis), for ``recops ct status``.
    """

    model: str
    state: State
    cycle: int | None
    champion: str | None
    champion_since: float | None
    last_training: float | None
    watermark: int
    last_check: dict[str, Any]
    updated_at: float


@dataclass(frozen=True)
class Cycle:
    """One cycle from its trigger to its outcome (see the module docstring)."""

    id: int
    model: str
    trigger: str
    reason: str
    started_at: float
    watermark: int
    snapshot: str | None
    overrides: dict[str, Any]
    champion: str | None
    champion_folder: str | None
    run_id: str | None
    version: str | None
    folder: str | None
    gate: dict[str, Any] | None
    experiment: str | None
    experiment_started_at: float | None
    watch: str | None
    watch_started_at: float | None
    outcome: str | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {name: getattr(self, name) for name in _CYCLE_FIELDS}


@dataclass(frozen=True)
class Decision:
    """One logged decision: a transition (or a note) with its reason and evidence."""

    id: int
    model: str
    cycle: int | None
    at: float
    wall: float
    state_from: str
    state_to: str
    action: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {name: getattr(self, name) for name in _DECISION_FIELDS}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Connection(Protocol):
    """What the store's code needs of a connection: ``execute`` with ``?`` markers."""

    def execute(self, statement: str, args: tuple[Any, ...] = ..., /) -> Any:
        """Run one statement; a cursor with ``fetchone`` and ``fetchall``."""
        ...


class BaseStateStore(ABC):
    """The controller's state machine and logs on one SQL connection (the module docstring).

    A backend opens the connection and its tables and says how a write transaction
    queues and how the controller's lock is held; every rule is here, once.
    """

    #: The store, for messages: the file, or the URL without its password.
    location: str
    _conn: Connection
    _clock: Callable[[], float]

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, queued behind any other writer's."""

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the controller's lock for the block; ControllerBusyError when another has it."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading
    def load(self, model: str) -> ControllerState:
        """The model's controller state (``idle`` and empty the first time)."""
        row = self._conn.execute(
            f"SELECT {_CONTROLLER} FROM controller WHERE model = ?", (model,)
        ).fetchone()
        if row is None:
            return ControllerState(model, "idle", None, None, None, None, 0, {}, 0.0)
        return ControllerState(
            model=row[0],
            state=row[1],
            cycle=row[2],
            champion=row[3],
            champion_since=row[4],
            last_training=row[5],
            watermark=int(row[6]),
            last_check=json.loads(row[7]) if row[7] else {},
            updated_at=row[8],
        )

    def cycle(self, cycle_id: int) -> Cycle:
        """One cycle; KeyError when there is none with that id."""
        row = self._conn.execute(
            f"SELECT {', '.join(_CYCLE_FIELDS)} FROM cycles WHERE id = ?", (cycle_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no cycle {cycle_id} in {self.location}")
        return _cycle(row)

    def cycles(self, model: str | None = None) -> list[Cycle]:
        """Every cycle (of one model), oldest first."""
        where, args = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self._conn.execute(
            f"SELECT {', '.join(_CYCLE_FIELDS)} FROM cycles {where} ORDER BY id", args
        ).fetchall()
        return [_cycle(r) for r in rows]

    def decisions(self, model: str | None = None, limit: int | None = None) -> list[Decision]:
        """The decision log (of one model), oldest first; the last ``limit`` when given."""
        where, args = ("WHERE model = ?", (model,)) if model else ("", ())
        query = f"SELECT {', '.join(_DECISION_FIELDS)} FROM decisions {where} ORDER BY id DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        rows = self._conn.execute(query, args).fetchall()
        return [_decision(r) for r in reversed(rows)]

    def models(self) -> list[str]:
        """The models this store holds a controller for."""
        rows = self._conn.execute("SELECT model FROM controller ORDER BY model").fetchall()
        return [str(r[0]) for r in rows]

    # ----------------------------------------------------------------- writing
    def next_cycle_id(self) -> int:
        """The id the next cycle gets."""
        return _next_id(self._conn, "cycles")

    def transition(
        self,
        model: str,
        expected: State,
        to: State,
        *,
        at: float,
        action: str,
        reason: str,
        detail: dict[str, Any] | None = None,
        new_cycle: dict[str, Any] | None = None,
        cycle: dict[str, Any] | None = None,
        controller: dict[str, Any] | None = None,
    ) -> Decision:
        """Move ``model`` from ``expected`` to ``to``, atomically with its bookkeeping.

        Parameters
        ----------
        expected:
            The state it must be in (StateError otherwise: another process moved it).
        at:
            The controller's clock.
        action, reason, detail:
            What is logged.
        new_cycle:
            Fields of a cycle to start (it becomes the controller's cycle).
        cycle:
            Fields to set on the controller's current cycle.
        controller:
            Fields to set on the controller's row (``champion``, ``watermark``, ...).
        """
        if (expected, to) not in TRANSITIONS:
            raise StateError(f"the controller never goes from {expected!r} to {to!r}")
        with self._transaction() as conn:
            current = self.load(model)
            if current.state != expected:
                raise StateError(
                    f"model {model!r}: the controller is {current.state!r}, not {expected!r} "
                    "(another controller moved it?)"
                )
            cycle_id = current.cycle
            if new_cycle is not None:
                cycle_id = self._insert_cycle(conn, model, new_cycle)
            if cycle and cycle_id is not None:
                self._update(conn, "cycles", "id", cycle_id, cycle)
            fields = {"state": to, "cycle": None if to == "idle" else cycle_id}
            fields.update(controller or {})
            self._upsert_controller(conn, current, fields, at)
            return self._log(conn, model, cycle_id, at, expected, to, action, reason, detail)

    def note(
        self,
        model: str,
        *,
        at: float,
        action: str,
        reason: str,
        detail: dict[str, Any] | None = None,
        controller: dict[str, Any] | None = None,
    ) -> Decision:
        """Log an observation that changes no state (and set controller fields)."""
        with self._transaction() as conn:
            current = self.load(model)
            self._upsert_controller(conn, current, controller or {}, at)
            state = current.state
            return self._log(conn, model, current.cycle, at, state, state, action, reason, detail)

    def set_last_check(self, model: str, check: dict[str, Any], at: float) -> None:
        """Remember what this round found (no decision is logged)."""
        with self._transaction() as conn:
            self._upsert_controller(conn, self.load(model), {"last_check": check}, at)

    def _insert_cycle(self, conn: Connection, model: str, values: dict[str, Any]) -> int:
        # The id is chosen here, in the transaction (no backend's sequence may skip
        # one): the snapshot was named after next_cycle_id().
        cycle_id = _next_id(conn, "cycles")
        row = {"id": cycle_id, "model": model, **values}
        if "overrides" in row:
            row["overrides"] = _json(row["overrides"])
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO cycles ({names}) VALUES ({marks})", tuple(row.values()))
        return cycle_id

    @staticmethod
    def _update(conn: Connection, table: str, key: str, value: Any, fields: dict[str, Any]) -> None:
        unknown = set(fields) - set(_CYCLE_FIELDS)
        if unknown:
            raise StateError(f"cycles have no field(s) {sorted(unknown)}")
        values = [_json(v) if isinstance(v, dict) else v for v in fields.values()]
        sets = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", (*values, value))

    def _upsert_controller(
        self,
        conn: Connection,
        current: ControllerState,
        fields: dict[str, Any],
        at: float,
    ) -> None:
        row = {
            "model": current.model,
            "state": current.state,
            "cycle": current.cycle,
            "champion": current.champion,
            "champion_since": current.champion_since,
            "last_training": current.last_training,
            "watermark": current.watermark,
            "last_check": current.last_check,
            "updated_at": at,
        }
        unknown = set(fields) - set(row)
        if unknown:
            raise StateError(f"the controller has no field(s) {sorted(unknown)}")
        row.update(fields)
        row["last_check"] = _json(row["last_check"] or {})
        marks = ", ".join("?" for _ in row)
        sets = ", ".join(f"{name} = excluded.{name}" for name in row if name != "model")
        conn.execute(
            f"INSERT INTO controller ({', '.join(row)}) VALUES ({marks}) "
            f"ON CONFLICT (model) DO UPDATE SET {sets}",
            tuple(row.values()),
        )

    def _log(
        self,
        conn: Connection,
        model: str,
        cycle: int | None,
        at: float,
        state_from: str,
        state_to: str,
        action: str,
        reason: str,
        detail: dict[str, Any] | None,
    ) -> Decision:
        wall = float(self._clock())
        document = detail or {}
        decision_id = _next_id(conn, "decisions")
        conn.execute(
            "INSERT INTO decisions (id, model, cycle, at, wall, state_from, state_to, action,"
            " reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (decision_id, model, cycle, at, wall, state_from, state_to, action, reason,
             _json(document)),
        )  # fmt: skip
        return Decision(
            decision_id, model, cycle, at, wall, state_from, state_to, action, reason,
            json.loads(_json(document)),
        )  # fmt: skip


class StateStore(BaseStateStore):
    """The controller's SQLite file (see the module docstring).

    Parameters
    ----------
    path:
        The file; created with its folder and tables when missing.
    clock:
        Wall-clock seconds for ``Decision.wall`` (a test may pin it).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SQLITE_SCHEMA)
        self._sqlite = conn
        self._conn = conn

    def close(self) -> None:
        """Close the connection."""
        self._sqlite.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._sqlite)

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold ``<file>.lock`` for the block (:func:`exclusive`)."""
        return exclusive(self.path)


def open_state_store(
    target: str | Path, *, clock: Callable[[], float] = time.time
) -> BaseStateStore:
    """The controller's state at ``target``: a ``postgresql://`` URL or a SQLite file."""
    if is_postgres_url(target):
        from recops.ct.state_postgres import PostgresStateStore

        return PostgresStateStore(str(target), clock=clock)
    return StateStore(target, clock=clock)


def _next_id(conn: Connection, table: str) -> int:
    # Inside a write transaction the writers are queued: the id is free until it commits.
    (found,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
    return int(found) + 1


def _decision(row: tuple[Any, ...]) -> Decision:
    values = dict(zip(_DECISION_FIELDS, row, strict=True))
    values["detail"] = json.loads(values["detail"])
    return Decision(**values)


def _cycle(row: tuple[Any, ...]) -> Cycle:
    values = dict(zip(_CYCLE_FIELDS, row, strict=True))
    values["overrides"] = json.loads(values["overrides"] or "{}")
    values["gate"] = json.loads(values["gate"]) if values["gate"] else None
    return Cycle(**values)


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold ``<path>.lock`` for the block; ControllerBusyError when another process holds it."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise ControllerBusyError(
                f"another controller holds {lock} (pid {holder}): one controller per state file"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
