"""The run store: runs, steps, artifacts, lineage and the step cache, in one SQLite file.

Schema (``PRAGMA user_version = 1``)::

    runs(run_id TEXT PRIMARY KEY, pipeline TEXT, ref TEXT /* module:qualname */,
         status TEXT /* running|succeeded|failed */, executor TEXT, params TEXT /* JSON */,
         code_version TEXT /* JSON: recops version, python, git commit */, store TEXT,
         started REAL, finished REAL, error TEXT, outputs TEXT /* JSON name → digest */,
         attempts INTEGER /* 1 + resumes */)
    steps(run_id, step, position INTEGER, component TEXT /* module:qualname */,
          status TEXT /* pending|running|succeeded|cached|failed|skipped */,
          code_hash TEXT, cache_key TEXT, params TEXT /* JSON */, fingerprint TEXT,
          attempts INTEGER, started REAL, finished REAL, error TEXT, log TEXT,
          cached_from TEXT /* run that computed a cached step */, PRIMARY KEY (run_id, step))
    step_io(run_id, step, direction TEXT /* input|output */, name TEXT,
            digest TEXT /* NULL: None */, PRIMARY KEY (run_id, step, direction, name))
    artifacts(digest TEXT PRIMARY KEY, kind, codec, type, uri, size INTEGER, summary TEXT,
              created REAL)
    cache(key TEXT PRIMARY KEY, run_id, step, outputs TEXT /* JSON name → digest */, created REAL)

Lineage is ``step_io`` joined to ``steps``: the step that *computed* an artifact (its
``output`` row with status ``succeeded``) with its inputs, parameters and code hash,
and every step that read it. Timestamps are unix seconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recops.pipelines.artifacts import ArtifactRecord
from recops.sqlite import immediate

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, ref TEXT NOT NULL, status TEXT NOT NULL,
    executor TEXT NOT NULL, params TEXT NOT NULL, code_version TEXT NOT NULL, store TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, error TEXT, outputs TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (run_id), step TEXT NOT NULL,
    position INTEGER NOT NULL, component TEXT NOT NULL, status TEXT NOT NULL,
    code_hash TEXT NOT NULL, cache_key TEXT, params TEXT NOT NULL, fingerprint TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, error TEXT, log TEXT,
    cached_from TEXT, PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS step_io (
    run_id TEXT NOT NULL, step TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('input', 'output')),
    name TEXT NOT NULL, digest TEXT, PRIMARY KEY (run_id, step, direction, name)
);
CREATE INDEX IF NOT EXISTS step_io_by_digest ON step_io (digest);
CREATE TABLE IF NOT EXISTS artifacts (
    digest TEXT PRIMARY KEY, kind TEXT NOT NULL, codec TEXT NOT NULL, type TEXT NOT NULL,
    uri TEXT NOT NULL, size INTEGER NOT NULL, summary TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL, step TEXT NOT NULL, outputs TEXT NOT NULL,
    created REAL NOT NULL
);
"""

RUN_STATUSES = ("running", "succeeded", "failed")
STEP_STATUSES = ("pending", "running", "succeeded", "cached", "failed", "skipped")


class RunNotFoundError(LookupError):
    """A run id (or prefix) the store does not know, or knows more than once."""


@dataclass(frozen=True)
class StepRecord:
    """One step of a run as recorded (see the module docstring for the fields)."""

    run_id: str
    name: str
    position: int
    component: str
    status: str
    code_hash: str
    cache_key: str | None
    params: dict[str, Any]
    fingerprint: str | None
    attempts: int
    started: float | None
    finished: float | None
    error: str | None
    log: str | None
    cached_from: str | None
    inputs: dict[str, str | None] = field(default_factory=dict)
    outputs: dict[str, str | None] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """Wall time of the step (all attempts), or None if it has not finished."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "name": self.name,
            "component": self.component,
            "status": self.status,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "code_hash": self.code_hash,
            "cache_key": self.cache_key,
            "params": self.params,
            "fingerprint": self.fingerprint,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "cached_from": self.cached_from,
            "error": self.error,
            "log": self.log,
        }


@dataclass(frozen=True)
class RunRecord:
    """One run with its steps in execution order."""

    run_id: str
    pipeline: str
    ref: str
    status: str
    executor: str
    params: dict[str, Any]
    code_version: dict[str, Any]
    store: str
    started: float
    finished: float | None
    error: str | None
    outputs: dict[str, str | None]
    attempts: int
    steps: tuple[StepRecord, ...] = ()

    @property
    def seconds(self) -> float | None:
        """Wall time from start to finish (of the last attempt), or None while running."""
        return None if self.finished is None else self.finished - self.started

    def step(self, name: str) -> StepRecord:
        """The step called ``name``; KeyError listing the steps."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"run {self.run_id} has no step {name!r}: {[s.name for s in self.steps]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "ref": self.ref,
            "status": self.status,
            "executor": self.executor,
            "params": self.params,
            "code_version": self.code_version,
            "store": self.store,
            "started": self.started,
            "finished": self.finished,
            "seconds": self.seconds,
            "error": self.error,
            "outputs": self.outputs,
            "attempts": self.attempts,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class Lineage:
    """Where an artifact came from and where it went.

    Parameters
    ----------
    artifact:
        Its record (None if the store never recorded it).
    producer:
        The step that computed it (its inputs, parameters and code hash), or None
        for an artifact no recorded step computed.
    consumers:
        ``(run_id, step, input name)`` of every step that read it.
    """

    artifact: ArtifactRecord | None
    producer: StepRecord | None
    consumers: tuple[tuple[str, str, str], ...]


class RunStore:
    """Runs, steps, artifacts and lineage in a SQLite file (WAL; safe to share).

    Parameters
    ----------
    path:
        The database file (created with its folder), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout=10000")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise ValueError(
                    f"{self.path}: run store schema version {version}, this recops reads "
                    f"{SCHEMA_VERSION}"
                )
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate(self._conn) as conn:
            yield conn

    # ------------------------------------------------------------------ writing
    def start_run(
        self,
        run_id: str,
        pipeline: str,
        ref: str,
        executor: str,
        params: dict[str, Any],
        code_version: dict[str, Any],
        store: str,
        steps: list[tuple[str, str, str, dict[str, Any]]],
    ) -> None:
        """Record a new run, its steps ``pending``: ``(name, component, code_hash, params)``."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, pipeline, ref, status, executor, params, code_version,"
                " store, started) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    run_id,
                    pipeline,
                    ref,
                    executor,
                    json.dumps(params),
                    json.dumps(code_version),
                    store,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO steps (run_id, step, position, component, status, code_hash, params)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                [
                    (run_id, name, k, comp, code, json.dumps(p))
                    for k, (name, comp, code, p) in enumerate(steps)
                ],
            )

    def restart_run(
        self, run_id: str, executor: str, steps: list[tuple[str, str, str, dict[str, Any]]]
    ) -> None:
        """Mark a failed run running again; steps not yet succeeded are reset to ``pending``."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='running', executor=?, finished=NULL, error=NULL,"
                " attempts=attempts+1 WHERE run_id=?",
                (executor, run_id),
            )
            done = {
                r[0]
                for r in db.execute(
                    "SELECT step FROM steps WHERE run_id=? AND status IN ('succeeded','cached')",
                    (run_id,),
                )
            }
            for k, (name, comp, code, p) in enumerate(steps):
                if name in done:
                    db.execute(
                        "UPDATE steps SET position=? WHERE run_id=? AND step=?", (k, run_id, name)
                    )
                    continue
                db.execute("DELETE FROM step_io WHERE run_id=? AND step=?", (run_id, name))
                db.execute(
                    "INSERT OR REPLACE INTO steps (run_id, step, position, component, status,"
                    " code_hash, params) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (run_id, name, k, comp, code, json.dumps(p)),
                )

    def step_started(
        self,
        run_id: str,
        step: str,
        inputs: dict[str, str | None],
        cache_key: str | None,
        fingerprint: str | None,
    ) -> None:
        """A step begins (or is looked up in the cache) with these input digests."""
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='running', started=?, cache_key=?, fingerprint=?"
                " WHERE run_id=? AND step=?",
                (time.time(), cache_key, fingerprint, run_id, step),
            )
            db.executemany(
                "INSERT OR REPLACE INTO step_io VALUES (?, ?, 'input', ?, ?)",
                [(run_id, step, n, d) for n, d in inputs.items()],
            )

    def step_finished(
        self,
        run_id: str,
        step: str,
        status: str,
        outputs: dict[str, ArtifactRecord | None],
        *,
        attempts: int,
        error: str | None = None,
        log: str | None = None,
        cached_from: str | None = None,
    ) -> None:
        """A step ended (``succeeded``, ``cached`` or ``failed``) with these outputs."""
        if status not in STEP_STATUSES:
            raise ValueError(f"unknown step status {status!r}")
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status=?, finished=?, attempts=?, error=?, log=?, cached_from=?"
                " WHERE run_id=? AND step=?",
                (status, now, attempts, error, log, cached_from, run_id, step),
            )
            for name, record in outputs.items():
                digest = None if record is None else record.digest
                db.execute(
                    "INSERT OR REPLACE INTO step_io VALUES (?, ?, 'output', ?, ?)",
                    (run_id, step, name, digest),
                )
                if record is not None:
                    db.execute(
                        "INSERT OR IGNORE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.digest,
                            record.kind,
                            record.codec,
                            record.type,
                            record.uri,
                            record.size,
                            json.dumps(record.summary),
                            now,
                        ),
                    )

    def skip_pending(self, run_id: str) -> None:
        """Steps that never started (an earlier step failed) become ``skipped``."""
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='skipped' WHERE run_id=? AND status IN"
                " ('pending','running')",
                (run_id,),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        outputs: dict[str, str | None] | None = None,
        error: str | None = None,
    ) -> None:
        """The run ended."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, finished=?, outputs=?, error=? WHERE run_id=?",
                (status, time.time(), json.dumps(outputs or {}), error, run_id),
            )

    def remember(self, key: str, run_id: str, step: str, outputs: dict[str, str | None]) -> None:
        """Enter a computed step's outputs in the cache under its key."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?)",
                (key, run_id, step, json.dumps(outputs), time.time()),
            )

    # ------------------------------------------------------------------ reading
    def cached(self, key: str) -> tuple[str, dict[str, str | None]] | None:
        """``(run_id, outputs)`` recorded under a cache key, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT run_id, outputs FROM cache WHERE key=?", (key,)
            ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def resolve(self, run_id: str) -> str:
        """The full run id of ``run_id`` or of a unique prefix of one."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, length(?)) = ? ORDER BY started",
                (run_id, run_id),
            ).fetchall()
        exact = [r[0] for r in rows if r[0] == run_id]
        if exact:
            return exact[0]
        if len(rows) != 1:
            found = "no run" if not rows else f"{len(rows)} runs"
            raise RunNotFoundError(f"{found} matches {run_id!r} in {self.path}")
        return str(rows[0][0])

    def get_run(self, run_id: str) -> RunRecord:
        """A run with its steps; RunNotFoundError if unknown (a unique prefix is enough)."""
        full = self.resolve(run_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT run_id, pipeline, ref, status, executor, params, code_version, store,"
                " started, finished, error, outputs, attempts FROM runs WHERE run_id=?",
                (full,),
            ).fetchone()
            steps = self._steps(full)
        return _run(row, steps)

    def _steps(self, run_id: str) -> tuple[StepRecord, ...]:
        io: dict[tuple[str, str], dict[str, str | None]] = {}
        for step, direction, name, digest in self._conn.execute(
            "SELECT step, direction, name, digest FROM step_io WHERE run_id=?", (run_id,)
        ):
            io.setdefault((step, direction), {})[name] = digest
        rows = self._conn.execute(
            "SELECT run_id, step, position, component, status, code_hash, cache_key, params,"
            " fingerprint, attempts, started, finished, error, log, cached_from FROM steps"
            " WHERE run_id=? ORDER BY position",
            (run_id,),
        ).fetchall()
        return tuple(
            StepRecord(
                run_id=r[0],
                name=r[1],
                position=r[2],
                component=r[3],
                status=r[4],
                code_hash=r[5],
                cache_key=r[6],
                params=json.loads(r[7]),
                fingerprint=r[8],
                attempts=r[9],
                started=r[10],
                finished=r[11],
                error=r[12],
                log=r[13],
                cached_from=r[14],
                inputs=io.get((r[1], "input"), {}),
                outputs=io.get((r[1], "output"), {}),
            )
            for r in rows
        )

    def list_runs(self, pipeline: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs first (with their steps), optionally of one pipeline."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, pipeline, ref, status, executor, params, code_version, store,"
                " started, finished, error, outputs, attempts FROM runs"
                " WHERE (? IS NULL OR pipeline = ?) ORDER BY started DESC LIMIT ?",
                (pipeline, pipeline, int(limit)),
            ).fetchall()
            return [_run(r, self._steps(r[0])) for r in rows]

    def previous_output(
        self, pipeline: str, step: str, output: str, before: float | None = None
    ) -> str | None:
        """Digest of ``step``'s ``output`` in the latest succeeded run of ``pipeline``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT io.digest FROM runs r JOIN step_io io ON io.run_id = r.run_id"
                " WHERE r.pipeline=? AND r.status='succeeded' AND io.step=?"
                " AND io.direction='output' AND io.name=? AND (? IS NULL OR r.started < ?)"
                " ORDER BY r.started DESC LIMIT 1",
                (pipeline, step, output, before, before),
            ).fetchone()
        return None if row is None else row[0]

    def artifact(self, digest: str) -> ArtifactRecord | None:
        """The recorded artifact ``digest``, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT digest, kind, codec, type, uri, size, summary FROM artifacts"
                " WHERE digest=?",
                (digest,),
            ).fetchone()
        if row is None:
            return None
        digest_, kind, codec, type_, uri, size, summary = row
        return ArtifactRecord(digest_, kind, codec, type_, uri, size, json.loads(summary))

    def lineage(self, digest: str) -> Lineage:
        """Which step computed ``digest`` (inputs, code, parameters) and which steps read it."""
        with self._lock:
            producer = self._conn.execute(
                "SELECT io.run_id, io.step FROM step_io io JOIN steps s"
                " ON s.run_id = io.run_id AND s.step = io.step"
                " WHERE io.digest=? AND io.direction='output' AND s.status='succeeded'"
                " ORDER BY s.finished LIMIT 1",
                (digest,),
            ).fetchone()
            consumers = self._conn.execute(
                "SELECT run_id, step, name FROM step_io WHERE digest=? AND direction='input'"
                " ORDER BY run_id, step",
                (digest,),
            ).fetchall()
            step = None
            if producer is not None:
                step = next(s for s in self._steps(producer[0]) if s.name == producer[1])
        return Lineage(self.artifact(digest), step, tuple(tuple(c) for c in consumers))


def _run(row: tuple[Any, ...], steps: tuple[StepRecord, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        pipeline=row[1],
        ref=row[2],
        status=row[3],
        executor=row[4],
        params=json.loads(row[5]),
        code_version=json.loads(row[6]),
        store=row[7],
        started=row[8],
        finished=row[9],
        error=row[10],
        outputs=json.loads(row[11]) if row[11] else {},
        attempts=row[12],
        steps=steps,
    )
