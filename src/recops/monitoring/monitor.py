"""One monitoring pass: drift, online metrics and alerts, in a :class:`MonitorReport`.

:func:`monitor` is what ``recops monitor report`` and the continuous-training controller
run: it compares the current window of the server's log with the reference (the
training window: the training interactions, or the log's rows of that window), computes
the online metrics over the log given, and raises the alerts. ``should_retrain`` and
``reasons`` sum it up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recops.data.schema import ITEM_ID
from recops.monitoring.alerts import Alert, ctr_alert, drift_alerts, volume_alert
from recops.monitoring.config import MonitorConfig
from recops.monitoring.drift import DriftReport, detect_drift
from recops.monitoring.features import Window
from recops.monitoring.logs import ServingLog
from recops.monitoring.online import OnlineMetrics, online_metrics
from recops.monitoring.samples import log_sample, training_sample


@dataclass(frozen=True)
class MonitorReport:
    """The result of one pass (see the module docstring)."""

    drift: DriftReport
    metrics: OnlineMetrics
    alerts: tuple[Alert, ...]
    created_at: int

    @property
    def should_retrain(self) -> bool:
        """Whether an alert asks for retraining (a drift with ``retrain``, or a CTR fall)."""
        return any(a.retrain for a in self.alerts)

    @property
    def reasons(self) -> tuple[str, ...]:
        """The messages of the alerts that ask for retraining."""
        return tuple(a.message for a in self.alerts if a.retrain)

    def to_dict(self) -> dict[str, Any]:
        """The verdict, the alerts, the drift report and the metrics' notes (JSON-ready)."""
        return {
            "created_at": self.created_at,
            "should_retrain": self.should_retrain,
            "reasons": list(self.reasons),
            "alerts": [a.to_dict() for a in self.alerts],
            "drift": self.drift.to_dict(),
            "metrics": {
                "bucket_s": self.metrics.bucket_s,
                "catalog_size": self.metrics.catalog_size,
                "rows": len(self.metrics.table),
                "notes": list(self.metrics.notes),
            },
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path``."""
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return out


def monitor(
    log: ServingLog,
    *,
    current: Window,
    reference: Window | None = None,
    training: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
    config: MonitorConfig | None = None,
) -> MonitorReport:
    """Drift of ``current`` against the reference, the online metrics of ``log``, alerts.

    Parameters
    ----------
    log:
        The server's log; it must hold the current window (and the reference window,
        unless ``training`` is given), with the history before them.
    current:
        Recent serving traffic.
    reference:
        The training window; the span of ``training`` when None (one of the two is needed).
    training:
        The model's training interactions: the reference's clicks come from them.
    catalog:
        Items (``item_id, categories, publish_time``): item-side features and coverage.
    config:
        Thresholds and buckets; the defaults when None.
    """
    config = config or MonitorConfig()
    if training is not None:
        ref_sample = training_sample(training, catalog, config, log=log, window=reference)
    elif reference is not None:
        ref_sample = log_sample(log, reference, catalog, config)
    else:
        raise ValueError("give the `reference` window, or the `training` interactions")
    drift = detect_drift(ref_sample, log_sample(log, current, catalog, config), config)
    size = None if catalog is None or catalog.empty else int(catalog[ITEM_ID].nunique())
    metrics = online_metrics(
        log, bucket_s=config.bucket_s, catalog_size=size, click_event=config.click_event
    )
    now = log.between(current.start, current.end)
    alerts = drift_alerts(drift)
    ref_window = drift.reference
    for found in (
        ctr_alert(log.between(ref_window.start, ref_window.end), now, config),
        volume_alert(now),
    ):
        if found is not None:
            alerts.append(found)
    return MonitorReport(drift, metrics, tuple(alerts), int(time.time()))
