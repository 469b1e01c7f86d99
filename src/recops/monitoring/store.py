"""Monitoring results on disk: what a dashboard, a scrape or the training controller reads.

One folder holds

* ``metrics.parquet``: the online metrics table (rewritten each pass: it is recomputed
  from the log);
* ``latest.json``: the last :class:`~recops.monitoring.monitor.MonitorReport` (verdict,
  reasons, alerts, the drift report);
* ``drift/<current window end>.json``: every pass's
  :class:`~recops.monitoring.drift.DriftReport`, so drift can be followed over time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from recops.monitoring.drift import DriftReport
from recops.monitoring.monitor import MonitorReport

METRICS_FILE = "metrics.parquet"
LATEST_FILE = "latest.json"
DRIFT_FOLDER = "drift"


def save_report(report: MonitorReport, folder: str | Path) -> list[Path]:
    """Write ``report`` into ``folder`` (created); returns the files written."""
    root = Path(folder)
    (root / DRIFT_FOLDER).mkdir(parents=True, exist_ok=True)
    metrics = root / METRICS_FILE
    report.metrics.table.to_parquet(metrics, index=False)
    drift = report.drift.write_json(root / DRIFT_FOLDER / f"{report.drift.current.end}.json")
    latest = report.write_json(root / LATEST_FILE)
    return [metrics, drift, latest]


def load_latest(folder: str | Path) -> dict[str, Any]:
    """The last report's JSON (``should_retrain``, ``reasons``, ``alerts``, ``drift``)."""
    path = Path(folder) / LATEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no monitoring report there (run `recops monitor report --out`)"
        )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_drift_history(folder: str | Path) -> list[DriftReport]:
    """Every stored drift report, oldest current window first."""
    files = sorted((Path(folder) / DRIFT_FOLDER).glob("*.json"), key=lambda p: int(p.stem))
    return [DriftReport.read_json(f) for f in files]


def load_metrics(folder: str | Path) -> pd.DataFrame:
    """The stored online metrics table."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics stored there")
    return pd.read_parquet(path)
