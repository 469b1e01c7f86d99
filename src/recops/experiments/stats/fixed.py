"""Fixed-horizon comparison of two arms: Welch's t-test on the absolute and relative lift.

For arms ``a`` (control) and ``b`` summarised as ``(n, m, v)`` (see
:class:`~recops.experiments.stats.summary.ArmSummary`):

* absolute lift ``Δ = m_b − m_a`` with ``Var(Δ) = v_b/n_b + v_a/n_a``;
* relative lift ``Δ% = m_b / m_a − 1`` with the delta-method variance of the ratio of
  two independent means ``Var(Δ%) = v_b / (n_b m_a²) + m_b² v_a / (n_a m_a⁴)``;
* both referred to Student's t with the Welch–Satterthwaite degrees of freedom of the
  absolute lift, ``ν = (v_a/n_a + v_b/n_b)² / ((v_a/n_a)²/(n_a−1) + (v_b/n_b)²/(n_b−1))``;
  the interval is ``estimate ± t_{1−α/2, ν} √Var`` and the p-value ``2 P(T_ν > |estimate| / √Var)``.

For a per-unit mean this is exactly Welch's test (``scipy.stats.ttest_ind(b, a,
equal_var=False)``); for a ratio metric, Welch's test on the delta method's
linearised units (Deng, Knoblich and Lu 2018). GrowthBook's ``gbstats`` frequentist
engine uses the same formulas.

References
----------
Welch, B. L. (1947). The generalization of "Student's" problem when several different
population variances are involved. Biometrika 34. Deng, A., Knoblich, U. and Lu, J.
(2018). Applying the Delta Method in Metric Analytics. KDD.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from recops.experiments.stats._validation import check_alpha
from recops.experiments.stats.summary import ArmSummary


@dataclass(frozen=True)
class Lift:
    """A lift estimate with its ``1 − α`` interval and two-sided p-value (against 0).

    Parameters
    ----------
    estimate:
        The lift (absolute: treatment − control; relative: treatment / control − 1).
    ci_low, ci_high:
        Interval bounds.
    std_error:
        Standard error of ``estimate``.
    p_value:
        Two-sided p-value of "no lift".
    """

    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    p_value: float

    def to_dict(self) -> dict[str, float]:
        """``estimate``, ``ci_low``, ``ci_high``, ``std_error``, ``p_value``."""
        return asdict(self)


@dataclass(frozen=True)
class FixedHorizonTest:
    """Welch's test of one treatment against control.

    Parameters
    ----------
    absolute, relative:
        The absolute and relative lift.
    dof:
        Welch–Satterthwaite degrees of freedom.
    alpha:
        ``1 −`` the interval's level.
    """

    absolute: Lift
    relative: Lift
    dof: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """``absolute``, ``relative`` (each :meth:`Lift.to_dict`) and ``dof``."""
        return {
            "absolute": self.absolute.to_dict(),
            "relative": self.relative.to_dict(),
            "dof": self.dof,
        }


def lift_variances(
    n_a: Any, mean_a: Any, var_a: Any, n_b: Any, mean_b: Any, var_b: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised lifts and variances: ``(Δ, Var Δ, Δ%, Var Δ%, ν)`` (module docstring).

    All arguments broadcast; a zero control mean makes the relative lift ``nan``.
    """
    n_a, n_b = np.asarray(n_a, dtype=np.float64), np.asarray(n_b, dtype=np.float64)
    mean_a, mean_b = np.asarray(mean_a, dtype=np.float64), np.asarray(mean_b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        se2_a, se2_b = var_a / n_a, var_b / n_b
        absolute = mean_b - mean_a
        var_abs = se2_a + se2_b
        relative = np.where(mean_a != 0, mean_b / mean_a - 1.0, np.nan)
        var_rel = np.where(mean_a != 0, se2_b / mean_a**2 + mean_b**2 * se2_a / mean_a**4, np.nan)
        dof = var_abs**2 / (se2_a**2 / (n_a - 1.0) + se2_b**2 / (n_b - 1.0))
    return absolute, var_abs, relative, var_rel, dof


def t_interval(
    estimate: Any, variance: Any, dof: Any, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised ``(ci_low, ci_high, std_error, p_value)`` of ``estimate`` under ``t_ν``."""
    se = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = stats.t.ppf(1.0 - alpha / 2.0, dof) * se
        p = 2.0 * stats.t.sf(np.abs(estimate) / se, dof)
    return estimate - half, estimate + half, se, np.minimum(p, 1.0)


def welch_test(control: ArmSummary, treatment: ArmSummary, alpha: float = 0.05) -> FixedHorizonTest:
    """Welch's t-test of ``treatment`` against ``control``, absolute and relative lift.

    Parameters
    ----------
    control, treatment:
        The two arms, e.g. from :func:`~recops.experiments.stats.summary.summarize_mean`
        or :func:`~recops.experiments.stats.summary.summarize_ratio`.
    alpha:
        The intervals cover ``1 − alpha``.

    Returns
    -------
    FixedHorizonTest
        ``nan`` fields where the test is undefined (an arm with fewer than two units,
        zero variance in both arms, or a zero control mean for the relative lift).
    """
    alpha = check_alpha(alpha)
    absolute, var_abs, relative, var_rel, dof = lift_variances(
        control.n, control.mean, control.variance, treatment.n, treatment.mean, treatment.variance
    )
    lifts = []
    for estimate, variance in ((absolute, var_abs), (relative, var_rel)):
        low, high, se, p = t_interval(estimate, variance, dof, alpha)
        lifts.append(Lift(float(estimate), float(low), float(high), float(se), float(p)))
    return FixedHorizonTest(absolute=lifts[0], relative=lifts[1], dof=float(dof), alpha=alpha)
