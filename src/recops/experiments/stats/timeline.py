"""The tests re-run at every look as units arrive: for plots, and for peeking simulations.

Units are taken in arrival order (``timestamp``, else row order). At each look ``k``
(the first ``looks[k]`` units) both arms are summarised from running sums,

``x̄ = S_x / n``, ``s_x² = (S_xx − S_x² / n) / (n − 1)``, ``s_xy = (S_xy − S_x S_y / n) / (n − 1)``,

and passed to the same kernels as the one-shot tests (Welch's t for the fixed-horizon
interval, the asymptotic confidence sequence), so a simulation that peeks after every
batch tests exactly what :func:`~recops.experiments.stats.analysis.analyze` reports.
Everything is vectorised over leading axes (simulations) and looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from recops.experiments.stats._validation import check_alpha
from recops.experiments.stats.fixed import lift_variances, t_interval
from recops.experiments.stats.metrics import Metric
from recops.experiments.stats.sequential import DEFAULT_TUNING, confidence_sequence_arrays
from recops.experiments.stats.summary import ratio_moments
from recops.experiments.stats.table import TIMESTAMP, check_unit_table
from recops.ope._validation import check_positive_float, check_positive_int


class ArmArrays(NamedTuple):
    """An arm at every look: units, estimate and influence variance (arrays)."""

    n: np.ndarray
    mean: np.ndarray
    variance: np.ndarray


class RunningTests(NamedTuple):
    """Absolute-lift tests at every look (arrays shaped like the looks)."""

    control: ArmArrays
    treatment: ArmArrays
    lift: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    cs_low: np.ndarray
    cs_high: np.ndarray
    p_value_sequential: np.ndarray


def _running_arm(
    num: np.ndarray, den: np.ndarray | None, mask: np.ndarray, looks: np.ndarray
) -> ArmArrays:
    def cum(values: np.ndarray) -> np.ndarray:
        return np.cumsum(np.where(mask, values, 0.0), axis=-1)[..., looks - 1]

    n = cum(np.ones_like(num))
    with np.errstate(divide="ignore", invalid="ignore"):
        sx, sxx = cum(num), cum(num * num)
        mean_x = sx / n
        var_x = (sxx - sx * mean_x) / (n - 1.0)
        if den is None:
            return ArmArrays(n, mean_x, var_x)
        sy, syy, sxy = cum(den), cum(den * den), cum(num * den)
        mean_y = sy / n
        var_y = (syy - sy * mean_y) / (n - 1.0)
        cov = (sxy - sx * mean_y) / (n - 1.0)
    ratio, var = ratio_moments(mean_x, mean_y, var_x, var_y, cov)
    return ArmArrays(n, ratio, var)


def running_tests(
    num: np.ndarray,
    den: np.ndarray | None,
    treated: np.ndarray,
    looks: np.ndarray,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> RunningTests:
    """Fixed-horizon and sequential tests of the absolute lift after each of ``looks`` units.

    Parameters
    ----------
    num, den:
        Per-unit metric (numerator) and denominator (None for a mean metric), in arrival
        order along the last axis; leading axes are independent experiments.
    treated:
        Boolean, same shape: the unit is in the treatment arm (else control).
    looks:
        Increasing numbers of units (1-based counts along the last axis) to look after.
    alpha, tuning:
        As in :func:`~recops.experiments.stats.sequential.sequential_test`.
    """
    alpha = check_alpha(alpha)
    looks = np.asarray(looks, dtype=np.int64)
    treated = np.asarray(treated, dtype=bool)
    control = _running_arm(num, den, ~treated, looks)
    treatment = _running_arm(num, den, treated, looks)
    lift, var, _, _, dof = lift_variances(*control, *treatment)
    low, high, _, p = t_interval(lift, var, dof, alpha)
    cs_low, cs_high, p_seq = confidence_sequence_arrays(
        control.n + treatment.n, lift, var, alpha, tuning
    )
    return RunningTests(control, treatment, lift, low, high, p, cs_low, cs_high, p_seq)


@dataclass(frozen=True)
class Timeline:
    """One metric over the experiment, for plots.

    Parameters
    ----------
    metric:
        The metric's name.
    looks:
        Units seen (both arms) at each look.
    time:
        The last seen unit's ``timestamp`` at each look (None without timestamps).
    cumulative:
        Variant → the metric over its units seen so far.
    tests:
        Treatment → :class:`RunningTests` against control at each look.
    """

    metric: str
    looks: np.ndarray
    time: np.ndarray | None
    cumulative: dict[str, np.ndarray]
    tests: dict[str, RunningTests]


def timeline(
    frame: pd.DataFrame,
    control: str,
    metric: str | Metric,
    n_looks: int = 50,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> Timeline:
    """The cumulative metric per variant and the running tests, at ``n_looks`` even looks.

    Parameters
    ----------
    frame:
        The per-unit table (see :mod:`~recops.experiments.stats.table`).
    control:
        The control variant.
    metric:
        The metric.
    n_looks:
        Number of looks, evenly spaced in units.
    alpha, tuning:
        As in :func:`~recops.experiments.stats.analysis.analyze`.
    """
    n_looks = check_positive_int("n_looks", n_looks)
    tuning = check_positive_float("tuning", tuning, allow_inf=False)
    m = metric if isinstance(metric, Metric) else Metric.parse(metric)
    variant, columns = check_unit_table(frame, control, m.columns, optional=[TIMESTAMP])
    order = (
        np.argsort(columns[TIMESTAMP], kind="stable")
        if TIMESTAMP in columns
        else np.arange(variant.size)
    )
    variant = variant[order]
    num = columns[m.numerator][order]
    den = None if m.denominator is None else columns[m.denominator][order]
    looks = np.unique(np.linspace(1, variant.size, min(n_looks, variant.size)).round().astype(int))
    names = list(dict.fromkeys(variant))
    cumulative = {name: _running_arm(num, den, variant == name, looks).mean for name in names}
    tests = {}
    for name in names:
        if name == control:
            continue
        keep = (variant == name) | (variant == control)
        # Units of this pair seen by each look (at least 1: a look before the pair's
        # first unit shows that unit alone, whose tests are undefined anyway).
        pair_looks = np.maximum(np.cumsum(keep)[looks - 1], 1)
        tests[name] = running_tests(
            num[keep],
            None if den is None else den[keep],
            variant[keep] == name,
            pair_looks,
            alpha,
            tuning,
        )
    time = columns[TIMESTAMP][order][looks - 1] if TIMESTAMP in columns else None
    return Timeline(m.name, looks, time, cumulative, tests)
