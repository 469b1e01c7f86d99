"""A monitoring report as Prometheus metrics: a collector, and the text exposition.

:class:`MonitorCollector` can be registered on any ``prometheus_client`` registry (a
server's or the controller's) and reads the report it is given each scrape, so
whoever refreshes the report refreshes the metrics; :func:`render_prometheus` writes
the text format for a file-based collector (node_exporter's textfile directory) or a
plain HTTP handler. Online metrics are those of the report's last time bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recops.monitoring.monitor import MonitorReport

#: Online metric columns exported, with their help text.
_ONLINE = {
    "requests": "Slates served in the last bucket.",
    "impressions": "Items shown in the last bucket.",
    "clicks": "Shown items clicked (joined by request id) in the last bucket.",
    "ctr": "Clicks per impression in the last bucket.",
    "coverage": "Distinct items shown in the last bucket over the catalog size.",
    "cold_start_share": "Share of requests answered cold-start in the last bucket.",
    "events": "Events logged in the last bucket.",
}


class MonitorCollector(Collector):
    """Prometheus gauges of a :class:`MonitorReport` (none while there is no report).

    Parameters
    ----------
    source:
        Returns the report to export at each scrape (or None).
    """

    def __init__(self, source: Callable[[], MonitorReport | None]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        report = self.source()
        if report is None:
            return
        retrain = GaugeMetricFamily(
            "recops_monitor_should_retrain", "1 when an alert asks for retraining."
        )
        retrain.add_metric([], float(report.should_retrain))
        yield retrain
        alerts = GaugeMetricFamily(
            "recops_monitor_alerts", "Alerts raised, by kind.", labels=["kind"]
        )
        for kind in ("drift", "ctr", "volume"):
            alerts.add_metric([kind], float(sum(a.kind == kind for a in report.alerts)))
        yield alerts
        drift = GaugeMetricFamily(
            "recops_monitor_feature_drift", "1 when the feature drifted.", labels=["feature"]
        )
        psi = GaugeMetricFamily(
            "recops_monitor_feature_psi", "PSI of the feature.", labels=["feature"]
        )
        p_value = GaugeMetricFamily(
            "recops_monitor_feature_p_value",
            "p-value of the feature's test.",
            labels=["feature", "test"],
        )
        for f in report.drift.features:
            drift.add_metric([f.feature], float(f.drifted))
            if f.psi is not None and f.p_value is not None and f.test is not None:
                psi.add_metric([f.feature], f.psi)
                p_value.add_metric([f.feature, f.test], f.p_value)
        yield from (drift, psi, p_value)
        latest = report.metrics.latest()
        for column, help_text in _ONLINE.items():
            family = GaugeMetricFamily(
                f"recops_monitor_{column}", help_text, labels=["model", "version"]
            )
            for model, version, value in zip(
                latest["model"], latest["version"], latest[column], strict=True
            ):
                if np.isfinite(float(value)):
                    family.add_metric([str(model), str(version)], float(value))
            yield family


def render_prometheus(report: MonitorReport) -> bytes:
    """The Prometheus text exposition of ``report``."""
    registry = CollectorRegistry()
    registry.register(MonitorCollector(lambda: report))
    return generate_latest(registry)
