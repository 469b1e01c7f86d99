"""Monitoring: feature and prediction drift, online metrics per model version, alerts.

The continuous-training controller's entry point is :func:`monitor`, which returns a
:class:`MonitorReport`: ``should_retrain``, ``reasons``, the :class:`Alert` list, the
:class:`DriftReport` (one :class:`FeatureDrift` per feature) and the
:class:`OnlineMetrics`. The statistics (PSI, KS, χ²) are in
:mod:`recops.monitoring.statistics`; :mod:`recops.monitoring.world` writes the world
generator's traffic into an event log for checks where the truth is known.
"""

from recops.monitoring.alerts import Alert
from recops.monitoring.config import DriftConfig, FeatureRule, MonitorConfig, MonitorConfigError
from recops.monitoring.drift import DriftReport, FeatureDrift, detect_drift
from recops.monitoring.features import FEATURES, Feature, FeatureSample, Window
from recops.monitoring.logs import ServingLog, from_event_log, read_serving_log
from recops.monitoring.monitor import MonitorReport, monitor
from recops.monitoring.online import OnlineMetrics, online_metrics, window_metrics
from recops.monitoring.samples import log_sample, training_sample
from recops.monitoring.statistics import (
    ChiSquareTest,
    KSTest,
    PSIResult,
    categorical_psi,
    chi_square_test,
    ks_test,
    numeric_psi,
    psi,
)

__all__ = [
    "FEATURES",
    "Alert",
    "ChiSquareTest",
    "DriftConfig",
    "DriftReport",
    "Feature",
    "FeatureDrift",
    "FeatureRule",
    "FeatureSample",
    "KSTest",
    "MonitorConfig",
    "MonitorConfigError",
    "MonitorReport",
    "OnlineMetrics",
    "PSIResult",
    "ServingLog",
    "Window",
    "categorical_psi",
    "chi_square_test",
    "detect_drift",
    "from_event_log",
    "ks_test",
    "log_sample",
    "monitor",
    "numeric_psi",
    "online_metrics",
    "psi",
    "read_serving_log",
    "training_sample",
    "window_metrics",
]
