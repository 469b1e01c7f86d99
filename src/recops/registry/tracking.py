"""Tracking a pipeline run in MLflow: parameters, metrics, reports and the data version.

One MLflow run per pipeline run, in the config's experiment (``recops-train``):

* **parameters**: the pipeline config flattened (``model.epochs``, ``source.kind``,
  ``gate.rules.0.metric``...), lists as JSON;
* **metrics**: the offline evaluation of the new model and of the champion
  (``offline.candidate.all.recall_at_20``, ``offline.champion.warm.ndcg_at_10``,
  the paired difference ``offline.difference.recall_at_20`` and its bounds), the
  OPE estimates (``ope.snips.value``, ``ope.snips.ci_low``, ``ope.logged_ctr``) and
  the data checks (``data.check.volume``); ``@`` becomes ``_at_`` because MLflow
  metric names cannot hold it;
* **artifacts**: each report as JSON under ``reports/`` (``config.json``,
  ``data_report.json``, ``offline.json``, ``ope.json``; the gate adds
  ``gate.json``, the deploy step ``deploy.json``) and the model directory under
  ``model/`` (the registered version's source);
* **tags**: ``recops.data_version`` (the digest of the ingested data, the same
  address as the ``ingest`` step's artifact in the pipeline store),
  ``recops.model_digest``, ``recops.pipeline``, and the code version.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from recops.pipelines.artifacts import Report
from recops.registry.client import Registry

#: MLflow's limits per ``log_batch`` call.
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_MAX_PARAM = 6000
_BAD = re.compile(r"[^A-Za-z0-9_\-. /:]")


class TrackedRun(Report):
    """The MLflow run of one pipeline run (``tracking_uri``: the store, without a password,
    since the report is kept as an artifact)."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_name: str
    data_version: str | None


def metric_key(*parts: object) -> str:
    """An MLflow-safe metric or parameter name: parts joined by '.', '@' as '_at_'."""
    text = ".".join(str(p) for p in parts).replace("@", "_at_")
    return _BAD.sub("_", text)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested JSON values as ``{"a.b.c": "value"}`` (lists as JSON text)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}.{i}"))
        return out
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return {metric_key(prefix): text[:_MAX_PARAM]}


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            continue
        number = float(value)
        if number == number and abs(number) != float("inf"):
            out[key] = number
    return out


def report_metrics(prefix: str, document: Any) -> dict[str, float]:
    """Every number in a report's JSON as a metric named by its path (not booleans, not text)."""
    found: dict[str, Any] = {}

    def walk(value: Any, path: tuple[object, ...]) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, (*path, key))
        elif isinstance(value, list | tuple):
            for i, inner in enumerate(value):
                walk(inner, (*path, i))
        elif isinstance(value, int | float):
            found[metric_key(prefix, *path)] = value

    walk(document, ())
    return _finite(found)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def track_run(
    registry: Registry,
    experiment: str,
    run_name: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    reports: Mapping[str, Any],
    tags: Mapping[str, str],
    data_version: str | None,
) -> TrackedRun:
    """Log one pipeline run as a finished MLflow run (later steps may add to it).

    ``reports`` are JSON documents written as ``reports/<name>.json``.
    """
    from mlflow.entities import Metric, Param, RunTag

    experiment_id = registry.experiment_id(experiment)
    run_tags = {**tags, "mlflow.runName": run_name}
    if data_version is not None:
        run_tags["recops.data_version"] = data_version
    run = registry.client.create_run(experiment_id, run_name=run_name, tags=run_tags)
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    metric_rows = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
    param_rows = [Param(k, v) for k, v in sorted(params.items())]
    for chunk in _chunks(metric_rows, _BATCH_METRICS):
        registry.client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks(param_rows, _BATCH_PARAMS):
        registry.client.log_batch(run_id, params=chunk)
    tag_rows = [RunTag(k, v) for k, v in sorted(run_tags.items())]
    for chunk in _chunks(tag_rows, _BATCH_PARAMS):
        registry.client.log_batch(run_id, tags=chunk)
    for name, document in reports.items():
        registry.log_json(run_id, f"reports/{name}.json", document)
    registry.client.set_terminated(run_id, "FINISHED")
    return TrackedRun(
        run_id=run_id,
        experiment_id=experiment_id,
        tracking_uri=registry.location,
        run_name=run_name,
        data_version=data_version,
    )
