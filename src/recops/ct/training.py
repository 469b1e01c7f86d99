"""One cycle's training: a frozen snapshot of the data, then the gated pipeline on it.

When the pipeline reads the server's event log (``source.kind = "event_log"``), the
controller first writes the events up to the log's newest id (the cycle's
*watermark*) to ``<snapshots>/<model>-cycle-<n>.parquet`` and trains on that file
instead (``source.kind = "files"``, the same catalog; OPE still reads the live
log). The snapshot is what makes a restart cheap and exact: the ``ingest`` step's
fingerprint is the file's sha256, so a controller killed during or after training
and started again runs the same pipeline with the same inputs, every finished step
is a cache hit (the model is never trained twice), ``publish`` and ``register``
find the model by its digest, and the gate judges the same version. New events
that arrived meanwhile wait for the next cycle.

Other sources (a dataset, files, the built-in world) are used as configured; the
watermark still records where the event log was, for the volume trigger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recops.pipelines.progress import Reporter
from recops.pipelines.training.config import EventLogSource, FilesSource
from recops.pipelines.training.ingest import impression_rows
from recops.registry.config import GatedTrainingConfig
from recops.serving.eventlog import EventLog

_PAGE = 50_000


def _open(event_log: str | Path) -> EventLog | None:
    """The log (a SQLite file or a ``postgresql://`` URL); None when the file is not there yet."""
    from recops.serving.backends import event_log_at

    try:
        return event_log_at(event_log)
    except FileNotFoundError:
        return None


def log_position(event_log: str | Path) -> int:
    """The id of the newest event in the log (0 when there is no log yet)."""
    log = _open(event_log)
    if log is None:
        return 0
    try:
        return log.last_id()
    finally:
        log.close()


def count_events(event_log: str | Path, after: int, kinds: tuple[str, ...]) -> int:
    """Events of ``kinds`` with an id above ``after`` (0 when there is no log)."""
    log = _open(event_log)
    if log is None:
        return 0
    wanted = set(kinds)
    total = 0
    try:
        while rows := log.activity(after, _PAGE):
            after = rows[-1][0]
            total += sum(1 for row in rows if row[3] in wanted)
    finally:
        log.close()
    return total


@dataclass(frozen=True)
class Snapshot:
    """A cycle's training data: ``rows`` written, ``duplicates`` dropped."""

    rows: int
    duplicates: int


def write_snapshot(event_log: str | Path, upto: int, path: Path) -> Snapshot:
    """Write the log's events with ids ``<= upto`` to ``path`` (Parquet).

    With an ``impression`` row per item of every slate served before the last event
    kept (:func:`~recops.pipelines.training.ingest.impression_rows`). Exact duplicates
    (same user, item, event, value and second: a click sent twice without an
    idempotency key, two slates in one second) are kept in the log, which
    holds every acknowledged event, but written once: the ingest step refuses
    duplicate rows. Written under a hidden name and renamed into place: a snapshot on
    disk is whole.
    """
    import pandas as pd

    from recops.data.schema import INTERACTION_COLUMNS

    log = _open(event_log)
    if log is None:
        raise FileNotFoundError(f"{event_log}: no event log to train on")
    rows: list[tuple[str, str, str, float, int]] = []
    try:
        after = 0
        while page := log.read(after, _PAGE):
            after = page[-1][0]
            rows.extend(
                (e.user_id, e.item_id, e.event, e.value, e.timestamp) for i, e in page if i <= upto
            )
            if after >= upto:
                break
        # The slates served up to the last event kept, as impressions (what was shown).
        until = max((r[4] for r in rows), default=0) + 1
        rows.extend(impression_rows(log, until=until))
    finally:
        log.close()
    logged = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    frame = logged.drop_duplicates(ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(hidden, index=False)
    hidden.replace(path)
    return Snapshot(rows=len(frame), duplicates=len(logged) - len(frame))


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def cycle_pipeline(
    pipeline: GatedTrainingConfig, snapshot: str | None, overrides: dict[str, Any]
) -> GatedTrainingConfig:
    """The pipeline config of a cycle: the snapshot as its source, ``overrides`` merged in.

    ``overrides`` is a (nested) table of pipeline fields, e.g. ``{"model":
    {"epochs": 1}}``; the result is validated again.
    """
    document = pipeline.model_dump(mode="json")
    source = pipeline.source
    if snapshot is not None and isinstance(source, EventLogSource):
        files = FilesSource(kind="files", interactions=snapshot, catalog=source.catalog)
        document["source"] = files.model_dump(mode="json")
        # The pipeline's OPE reads the source's log by default: keep reading the live one.
        document["ope"]["event_log"] = pipeline.exposure_log()
    return GatedTrainingConfig.model_validate(_merge(document, overrides))


@dataclass(frozen=True)
class TrainingOutcome:
    """What one pipeline run gave the controller.

    Parameters
    ----------
    run_id:
        The pipeline run (``recops pipeline show RUN``).
    error:
        Why the run failed (None when it finished).
    version, folder, model_digest, new:
        The registered version, its folder in the model repository, its digest, and
        whether this run registered it (False: a model the registry already held).
    passed, gate:
        The gate's verdict and its summary with every rule's outcome.
    steps:
        Each step's status (``succeeded``, ``cached``, ...).
    seconds:
        Wall time of the run.
    """

    run_id: str | None
    error: str | None = None
    version: str | None = None
    folder: str | None = None
    model_digest: str | None = None
    new: bool = False
    passed: bool = False
    gate: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def step_summary(self) -> str:
        """``"9 succeeded, 4 cached"``."""
        counts: dict[str, int] = {}
        for status in self.steps.values():
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def run_pipeline(config: GatedTrainingConfig, reporter: Reporter | None = None) -> TrainingOutcome:
    """Run the gated pipeline with step caching; a failed run is an outcome, not an error."""
    from recops.pipelines import LocalExecutor, PipelineError
    from recops.registry.pipeline import gated_training_pipeline

    started = time.perf_counter()
    executor = LocalExecutor(config.storage.artifacts, config.storage.runs, reporter=reporter)
    try:
        result = executor.run(gated_training_pipeline, config=config)
    except PipelineError as err:
        steps = {s.name: s.status for s in executor.runs.get_run(err.run_id).steps}
        return TrainingOutcome(
            run_id=err.run_id,
            error=str(err),
            steps=steps,
            seconds=time.perf_counter() - started,
        )
    registered = result.value("register")
    verdict = result.value("gate")
    gate = {
        "passed": verdict.passed,
        "summary": verdict.summary(),
        "champion_version": verdict.champion_version,
        "outcomes": [o.model_dump(mode="json") for o in verdict.outcomes],
    }
    return TrainingOutcome(
        run_id=result.run_id,
        version=registered.version,
        folder=registered.repository_version,
        model_digest=registered.model_digest,
        new=registered.new,
        passed=verdict.passed,
        gate=gate,
        steps={s.name: s.status for s in result.record.steps},
        seconds=time.perf_counter() - started,
    )
