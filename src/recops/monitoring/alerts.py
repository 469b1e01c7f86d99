"""Alerts: what the monitor found that someone (or the training controller) should act on.

* ``drift``: a feature drifted (:mod:`recops.monitoring.drift`); asks for retraining
  when its rule says so (the default).
* ``ctr``: the click-through rate of the current window fell by at least ``ctr_drop``
  (relative) below the reference window's, significantly: Welch's test on the delta
  method's per-unit linearisation of ``clicks / impressions`` (users are the independent
  units, not impressions; :func:`recops.experiments.stats.welch_test`) at ``alpha``.
  A stale model loses clicks before any feature says why, so it asks for retraining.
* ``volume``: the current window logged no slates: nothing can be judged, and the
  problem is upstream (traffic, the server or its log), so it does not ask for
  retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from recops.experiments.logs import EXPOSURE_COLUMNS, shown_items
from recops.experiments.stats import summarize_ratio, welch_test
from recops.monitoring.config import MonitorConfig
from recops.monitoring.drift import DriftReport
from recops.monitoring.logs import ServingLog

AlertKind = Literal["drift", "ctr", "volume"]


@dataclass(frozen=True)
class Alert:
    """One finding to act on.

    Parameters
    ----------
    kind:
        ``drift``, ``ctr`` or ``volume`` (module docstring).
    subject:
        The feature, or the metric, it is about.
    message:
        One sentence with the numbers.
    retrain:
        Whether it asks for retraining.
    """

    kind: AlertKind
    subject: str
    message: str
    retrain: bool

    def to_dict(self) -> dict[str, Any]:
        """Every field."""
        return asdict(self)


def drift_alerts(report: DriftReport) -> list[Alert]:
    """One alert per drifting feature."""
    return [Alert("drift", f.feature, f.reason, f.retrain) for f in report.drifted]


def _per_unit(log: ServingLog, click_event: str) -> pd.DataFrame:
    shown = shown_items(log.exposures[list(EXPOSURE_COLUMNS)], log.responses(), click_event)
    return shown.groupby("unit").agg(clicks=("reward", "sum"), impressions=("reward", "size"))


def ctr_alert(reference: ServingLog, current: ServingLog, config: MonitorConfig) -> Alert | None:
    """The ``ctr`` alert, or None (no significant fall, or too few impressions to say)."""
    if reference.exposures.empty or current.exposures.empty:
        return None
    ref = _per_unit(reference, config.click_event)
    cur = _per_unit(current, config.click_event)
    if min(ref["impressions"].sum(), cur["impressions"].sum()) < config.min_impressions:
        return None
    a = summarize_ratio(ref["clicks"], ref["impressions"])
    b = summarize_ratio(cur["clicks"], cur["impressions"])
    test = welch_test(a, b, alpha=config.alpha)
    lift = test.relative
    if not (lift.estimate <= -config.ctr_drop and lift.p_value < config.alpha):
        return None
    message = (
        f"CTR fell {-lift.estimate:.1%} ({a.mean:.4f} → {b.mean:.4f}; "
        f"{1 - config.alpha:.0%} CI of the change [{lift.ci_low:+.1%}, {lift.ci_high:+.1%}], "
        f"p = {lift.p_value:.2g}, {a.n} and {b.n} users)"
    )
    return Alert("ctr", "ctr", message, retrain=True)


def volume_alert(current: ServingLog) -> Alert | None:
    """The ``volume`` alert when the current window logged no slates."""
    if not current.exposures.empty:
        return None
    return Alert(
        "volume",
        "requests",
        f"no slates logged in the current window ({len(current.events)} events): check the "
        "traffic, the server and its event log",
        retrain=False,
    )
