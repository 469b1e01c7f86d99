"""The durable experiment store, in the SQLite file of the event log.

Two tables beside the event log's own (``events``, ``exposures``, ``assignments``):

* ``experiments``: one row per experiment (its config as JSON, status, layer
  segment, the model version pinned for each variant);
* ``experiment_changes``: an append-only audit of every create, start, ramp and
  stop, with who did it and when (triggers refuse updates and deletes).

Each operation is one ``BEGIN IMMEDIATE`` transaction on the store's own
connection (WAL, ``busy_timeout``), so ``recops experiment ...`` and a running
server share the file safely, and two concurrent creates cannot take the same
buckets. The rules that keep experiments trustworthy live here:

* experiments of one layer never overlap: ``create`` reserves a segment of the
  layer's buckets (first fit) or says which experiments hold the layer and how
  much is free;
* once started, an experiment's config is frozen except ``traffic`` (``ramp``) and
  ``stop``; a stopped experiment never restarts (its logs would mix two periods);
* ``ramp`` up only adds units; down is refused once anything of the experiment
  is logged in ``exposures`` or ``assignments``;
* ``stop`` releases the segment for new experiments and changes nothing logged.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from recops.experiments.assignment import BUCKETS, Segment, share_to_buckets
from recops.experiments.config import (
    ExperimentConfig,
    ModelRef,
    ModelResolver,
    resolve_variants,
)
from recops.sqlite import immediate

Status = Literal["draft", "running", "stopped"]
Action = Literal["create", "replace", "start", "ramp", "stop"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    layer TEXT NOT NULL,
    salt TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
    segment_start INTEGER NOT NULL,
    segment_size INTEGER NOT NULL,
    config TEXT NOT NULL,
    models TEXT NOT NULL,
    source TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    stopped_at INTEGER
);
CREATE TABLE IF NOT EXISTS experiment_changes (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('create', 'replace', 'start', 'ramp', 'stop')),
    actor TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS experiment_changes_by_experiment
    ON experiment_changes (experiment, id);
CREATE TRIGGER IF NOT EXISTS experiment_changes_no_update
    BEFORE UPDATE ON experiment_changes
    BEGIN SELECT RAISE(ABORT, 'experiment_changes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS experiment_changes_no_delete
    BEFORE DELETE ON experiment_changes
    BEGIN SELECT RAISE(ABORT, 'experiment_changes is append-only'); END;
"""

_COLUMNS = (
    "config, status, segment_start, segment_size, models, source, created_at, started_at, "
    "stopped_at"
)

T = TypeVar("T")


class ExperimentStoreError(ValueError):
    """An operation the store refuses; the message says why and what to do instead."""


class ExperimentNotFoundError(ExperimentStoreError, LookupError):
    """No experiment of that name."""


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment as stored.

    Parameters
    ----------
    config:
        Its config; ``traffic`` is the current one (after ramps).
    status:
        ``draft`` (created), ``running`` (started) or ``stopped``.
    segment:
        The buckets of its layer it owns (released once stopped).
    models:
        The model version each variant serves, pinned at create and again at start.
    created_at, started_at, stopped_at:
        Unix seconds.
    source:
        The file it was created from.
    """

    config: ExperimentConfig
    status: Status
    segment: Segment
    models: dict[str, ModelRef] = field(default_factory=dict)
    created_at: int = 0
    started_at: int | None = None
    stopped_at: int | None = None
    source: str | None = None

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.config.name

    def phase(self, now: float | None = None) -> str:
        """``draft``, ``scheduled`` (started, before its start time), ``running``,
        ``ended`` (started, past its stop time) or ``stopped``."""
        if self.status != "running":
            return self.status
        moment = time.time() if now is None else now
        if self.config.start is not None and moment < self.config.start.timestamp():
            return "scheduled"
        if self.config.stop is not None and moment >= self.config.stop.timestamp():
            return "ended"
        return "running"

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """A JSON-ready summary (what ``recops experiment show --json`` prints)."""
        return {
            "name": self.name,
            "layer": self.config.layer,
            "type": self.config.type,
            "status": self.status,
            "phase": self.phase(now),
            "traffic": self.config.traffic,
            "segment": {"start": self.segment.start, "size": self.segment.size},
            "models": {v: {"model": m.model, "version": m.version} for v, m in self.models.items()},
            "created_at": self.created_at,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "source": self.source,
            "config": self.config.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class Change:
    """One row of the audit log ``experiment_changes``."""

    id: int
    experiment: str
    action: Action
    actor: str
    timestamp: int
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "id": self.id,
            "experiment": self.experiment,
            "action": self.action,
            "actor": self.actor,
            "timestamp": self.timestamp,
            "detail": self.detail,
        }


def default_actor() -> str:
    """The OS user name (``"unknown"`` where the system has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _share(buckets: int) -> str:
    return f"{buckets / BUCKETS:g}"


class ExperimentStore:
    """Experiments and their audit log in a SQLite file (the event log's by default).

    Parameters
    ----------
    path:
        The SQLite file; created with its folder and the two tables if missing.
    busy_timeout_ms:
        How long an operation waits for another writer (the server's event log).
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._data_version: int | None = None
        self._seen_version: int | None = None

    # --- reading ---------------------------------------------------------------------

    def get(self, name: str) -> ExperimentRecord:
        """The experiment called ``name``; ExperimentNotFoundError if there is none."""
        with self._lock:
            return self._get(name)

    def experiments(self, status: Status | None = None) -> list[ExperimentRecord]:
        """Every experiment (or those with ``status``), oldest first."""
        query = f"SELECT {_COLUMNS} FROM experiments"
        args: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_at, name", args).fetchall()
        return [_record(row) for row in rows]

    def running(self) -> list[ExperimentRecord]:
        """The started experiments, for :class:`~recops.experiments.assignment.Assigner`.

        Each record carries the config (with the current traffic), the layer
        segment and the pinned model version of each variant. Experiments whose
        ``start``/``stop`` window excludes the present are included; the Assigner
        leaves them out and says when to rebuild (``expires_at``).
        """
        return self.experiments("running")

    def changes(self, name: str | None = None) -> list[Change]:
        """The audit log (of one experiment, or of all), oldest first."""
        query = "SELECT id, experiment, action, actor, timestamp, detail FROM experiment_changes"
        args: tuple[str, ...] = ()
        if name is not None:
            query += " WHERE experiment = ?"
            args = (name,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        return [Change(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def logged(self, name: str) -> dict[str, int]:
        """Rows of ``name`` in the event log's ``exposures`` and ``assignments`` tables.

        A table the event log has not created yet counts 0.
        """
        with self._lock:
            return {table: self._count(table, name) for table in ("exposures", "assignments")}

    def version(self) -> int:
        """A number that grows with every change to the experiments (the last change id)."""
        with self._lock:
            return self._version()

    def changed(self) -> bool:
        """Whether the experiments changed (in any process) since the last call.

        Cheap enough for every request: ``PRAGMA data_version`` tells whether
        anything in the file was committed by another connection (the event log
        commits all the time), and only then is the last change id read.
        """
        with self._lock:
            (data_version,) = self._conn.execute("PRAGMA data_version").fetchone()
            if data_version == self._data_version and self._seen_version is not None:
                return False
            self._data_version = data_version
            version = self._version()
            changed = version != self._seen_version
            self._seen_version = version
            return changed

    # --- operations ------------------------------------------------------------------

    def create(
        self,
        config: ExperimentConfig,
        resolve: ModelResolver,
        *,
        actor: str | None = None,
        source: str | None = None,
        replace: bool = False,
        now: float | None = None,
    ) -> ExperimentRecord:
        """Store a new experiment as a draft and reserve its segment of the layer.

        Parameters
        ----------
        config:
            The validated config.
        resolve:
            Pins each variant's model version (unknown versions are refused).
        actor:
            Who, for the audit log (default: the OS user).
        source:
            The file it came from.
        replace:
            Replace a draft of the same name (never a started experiment).
        now:
            Unix seconds (default: the clock).
        """
        models = resolve_variants(config, resolve, source=source or f"experiment {config.name!r}")

        def run(conn: sqlite3.Connection) -> ExperimentRecord:
            action: Action = "create"
            existing = self._find(config.name)
            if existing is not None:
                if not (replace and existing.status == "draft"):
                    raise ExperimentStoreError(_exists_message(existing, replace))
                conn.execute("DELETE FROM experiments WHERE name = ?", (config.name,))
                action = "replace"
            active = [r for r in self._all() if r.status != "stopped"]
            _check_salt(config, active)
            segment = _allocate(config, [r for r in active if r.config.layer == config.layer])
            stamp = _stamp(now)
            record = ExperimentRecord(config, "draft", segment, models, stamp, source=source)
            conn.execute(
                "INSERT INTO experiments (name, layer, salt, status, segment_start, segment_size,"
                " config, models, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    config.name,
                    config.layer,
                    config.salt,
                    "draft",
                    segment.start,
                    segment.size,
                    config.model_dump_json(),
                    _models_json(models),
                    source,
                    stamp,
                ),
            )
            detail = {
                "config": config.model_dump(mode="json"),
                "segment": [segment.start, segment.size],
                "models": _models_dict(models),
                "source": source,
            }
            self._log(config.name, action, actor, stamp, detail)
            return record

        return self._write(run)

    def start(
        self,
        name: str,
        resolve: ModelResolver,
        *,
        actor: str | None = None,
        now: float | None = None,
    ) -> ExperimentRecord:
        """Start a draft: aliases are resolved again and the versions pinned for good."""

        def run(conn: sqlite3.Connection) -> ExperimentRecord:
            record = self._get(name)
            stamp = _stamp(now)
            if record.status == "running":
                raise ExperimentStoreError(
                    f"experiment {name!r} is already running (since {_iso(record.started_at or 0)})"
                )
            if record.status == "stopped":
                raise ExperimentStoreError(
                    f"experiment {name!r} was stopped at {_iso(record.stopped_at or 0)} and cannot "
                    "restart (its logs would mix two periods): create a new experiment "
                    "(a new name; keep the salt to keep the same split)"
                )
            stop = record.config.stop
            if stop is not None and stamp >= stop.timestamp():
                raise ExperimentStoreError(
                    f"experiment {name!r} has stop time {stop.isoformat()}, which has passed: "
                    "set a later `stop` and create it again with --replace"
                )
            models = resolve_variants(record.config, resolve, source=f"experiment {name!r}")
            conn.execute(
                "UPDATE experiments SET status = 'running', started_at = ?, models = ? "
                "WHERE name = ?",
                (stamp, _models_json(models), name),
            )
            detail: dict[str, Any] = {"models": _models_dict(models)}
            if models != record.models:
                detail["models_at_create"] = _models_dict(record.models)
            self._log(name, "start", actor, stamp, detail)
            return _replace(record, status="running", started_at=stamp, models=models)

        return self._write(run)

    def stop(
        self, name: str, *, actor: str | None = None, now: float | None = None
    ) -> ExperimentRecord:
        """Stop an experiment (a draft is cancelled); its segment is released, its logs kept."""

        def run(conn: sqlite3.Connection) -> ExperimentRecord:
            record = self._get(name)
            if record.status == "stopped":
                raise ExperimentStoreError(
                    f"experiment {name!r} is already stopped (at {_iso(record.stopped_at or 0)})"
                )
            stamp = _stamp(now)
            conn.execute(
                "UPDATE experiments SET status = 'stopped', stopped_at = ? WHERE name = ?",
                (stamp, name),
            )
            self._log(name, "stop", actor, stamp, {"was": record.status})
            return _replace(record, status="stopped", stopped_at=stamp)

        return self._write(run)

    def ramp(
        self, name: str, traffic: float, *, actor: str | None = None, now: float | None = None
    ) -> ExperimentRecord:
        """Set the share of the layer's units in the experiment.

        Up never moves a unit (the first ``traffic`` share of the segment is used;
        the segment grows into free buckets right after it if needed). Down is
        refused once any exposure or assignment of the experiment is logged.
        """

        def run(conn: sqlite3.Connection) -> ExperimentRecord:
            record = self._get(name)
            config = record.config
            if record.status == "stopped":
                raise ExperimentStoreError(f"experiment {name!r} is stopped: it cannot be ramped")
            update: dict[str, Any] = {"traffic": traffic}
            if config.max_traffic is not None and traffic > config.max_traffic:
                update["max_traffic"] = traffic  # the segment below is what really grows
            try:
                new = config.model_validate({**config.model_dump(), **update})
            except ValueError as exc:
                raise ExperimentStoreError(
                    f"traffic must be a share in (0, 1] of at least {1 / BUCKETS} (got {traffic!r})"
                ) from exc
            if new.traffic == config.traffic:
                return record
            if new.traffic < config.traffic:
                logged = {t: self._count(t, name) for t in ("exposures", "assignments")}
                if any(logged.values()):
                    raise ExperimentStoreError(
                        f"experiment {name!r} has logged {logged['exposures']:,} exposures and "
                        f"{logged['assignments']:,} assignments: lowering traffic from "
                        f"{config.traffic:g} to {new.traffic:g} would take exposed units out of "
                        "it. Stop the experiment instead (recops experiment stop)"
                    )
            segment = record.segment
            needed = share_to_buckets(new.traffic)
            if needed > segment.size:
                segment = self._grow(record, needed)
            stamp = _stamp(now)
            conn.execute(
                "UPDATE experiments SET config = ?, segment_size = ? WHERE name = ?",
                (new.model_dump_json(), segment.size, name),
            )
            detail = {
                "traffic": [config.traffic, new.traffic],
                "segment": [segment.start, segment.size],
            }
            self._log(name, "ramp", actor, stamp, detail)
            return _replace(record, config=new, segment=segment)

        return self._write(run)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ExperimentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals (called with the lock held) ---------------------------------------

    def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock, self._transaction() as conn:
            return operation(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock first: two creates cannot both see a free
        # segment and both take it.
        with immediate(self._conn) as conn:
            yield conn
        self._data_version = None  # our own commits do not move PRAGMA data_version

    def _find(self, name: str) -> ExperimentRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else _record(row)

    def _get(self, name: str) -> ExperimentRecord:
        record = self._find(name)
        if record is None:
            known = [r[0] for r in self._conn.execute("SELECT name FROM experiments ORDER BY name")]
            listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
            raise ExperimentNotFoundError(
                f"no experiment {name!r} in {self.path} (known: {listed or 'none'})"
            )
        return record

    def _all(self) -> list[ExperimentRecord]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM experiments").fetchall()
        return [_record(row) for row in rows]

    def _version(self) -> int:
        (version,) = self._conn.execute(
            "SELECT COALESCE(MAX(id), 0) FROM experiment_changes"
        ).fetchone()
        return int(version)

    def _count(self, table: str, name: str) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if exists is None:  # the event log creates it once the server logs experiments
            return 0
        (count,) = self._conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE experiment = ?", (name,)
        ).fetchone()
        return int(count)

    def _grow(self, record: ExperimentRecord, needed: int) -> Segment:
        segment = record.segment
        others = [
            r
            for r in self._all()
            if r.status != "stopped"
            and r.config.layer == record.config.layer
            and r.name != record.name
        ]
        after = [r for r in others if r.segment.start >= segment.end]
        limit = min([BUCKETS] + [r.segment.start for r in after])
        if segment.start + needed <= limit:
            return Segment(segment.start, needed)
        blocker = min(after, key=lambda r: r.segment.start) if after else None
        by = f" up to experiment {blocker.name!r}" if blocker is not None else ""
        raise ExperimentStoreError(
            f"experiment {record.name!r} holds {_share(segment.size)} of layer "
            f"{record.config.layer!r} and the buckets after it are free{by} for "
            f"{_share(limit - segment.end)} more: the most it can ramp to is "
            f"{_share(limit - segment.start)} (asked {_share(needed)}). Stop the experiment in "
            "the way, or reserve more with `max_traffic` in a new experiment"
        )

    def _log(
        self, name: str, action: Action, actor: str | None, stamp: int, detail: dict[str, Any]
    ) -> None:
        self._conn.execute(
            "INSERT INTO experiment_changes (experiment, action, actor, timestamp, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, action, actor or default_actor(), stamp, json.dumps(detail, sort_keys=True)),
        )


def _stamp(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _models_dict(models: dict[str, ModelRef]) -> dict[str, list[str]]:
    return {variant: [ref.model, ref.version] for variant, ref in models.items()}


def _models_json(models: dict[str, ModelRef]) -> str:
    return json.dumps(_models_dict(models), sort_keys=True)


def _record(row: tuple[Any, ...]) -> ExperimentRecord:
    config, status, start, size, models, source, created, started, stopped = row
    return ExperimentRecord(
        config=ExperimentConfig.model_validate_json(config),
        status=status,
        segment=Segment(start, size),
        models={v: ModelRef(*ref) for v, ref in json.loads(models).items()},
        created_at=created,
        started_at=started,
        stopped_at=stopped,
        source=source,
    )


def _exists_message(existing: ExperimentRecord, replace: bool) -> str:
    message = f"experiment {existing.name!r} already exists ({existing.status}): choose a new name"
    if existing.status == "draft" and not replace:
        return message + ", or replace the draft (--replace)"
    if existing.status != "draft":
        return message + " (a started experiment cannot be replaced: its logs name it)"
    return message


def _check_salt(config: ExperimentConfig, active: list[ExperimentRecord]) -> None:
    for other in active:
        if other.config.salt == config.salt and other.config.layer != config.layer:
            raise ExperimentStoreError(
                f"salt {config.salt!r} is used by experiment {other.name!r} in layer "
                f"{other.config.layer!r}: one salt in two layers gives the same units the same "
                "variants in both, so their effects mix. Choose another salt"
            )


def _allocate(config: ExperimentConfig, layer: list[ExperimentRecord]) -> Segment:
    """The first free run of buckets of the layer that holds ``config.reserved``."""
    for other in layer:
        if other.config.unit != config.unit:
            raise ExperimentStoreError(
                f"layer {config.layer!r} randomises {other.config.unit} (experiment "
                f"{other.name!r}); {config.name!r} randomises {config.unit}: a layer keeps its "
                "experiments apart only if they hash the same id. Use another layer"
            )
    needed = share_to_buckets(config.reserved)
    taken = sorted(layer, key=lambda r: r.segment.start)
    cursor = 0
    largest = 0
    # Gaps: before each taken segment, then after the last one.
    for end, next_cursor in [*((r.segment.start, r.segment.end) for r in taken), (BUCKETS, 0)]:
        if end - cursor >= needed:
            return Segment(cursor, needed)
        largest = max(largest, end - cursor)
        cursor = next_cursor
    free = BUCKETS - sum(r.segment.size for r in taken)
    holders = ", ".join(f"{r.name} ({_share(r.segment.size)}, {r.status})" for r in taken)
    raise ExperimentStoreError(
        f"layer {config.layer!r} has no room for {config.name!r}, which needs "
        f"{_share(needed)} of its units: {_share(free)} is free (the largest free run is "
        f"{_share(largest)}); it is held by {holders}. Lower `traffic`/`max_traffic`, stop one "
        "of them, or use another layer"
    )
