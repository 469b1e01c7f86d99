"""One arm's metric: its estimate and the variance of its per-unit influence values.

Every test in :mod:`recops.experiments.stats` reads an arm through the same three
numbers: ``n`` independent units, the estimate ``m`` and the variance ``v`` of the
units' influence values, so that ``Var(m) ≈ v / n``.

* A per-unit mean ``m = ȳ`` has influence ``y_i − ȳ``: ``v`` is the sample variance.
* A ratio of per-unit sums ``R = Σ x_i / Σ y_i = x̄ / ȳ`` (clicks per impression) is
  not a mean of independent terms: impressions of one user are correlated, so treating
  them as Bernoulli trials understates the variance. The delta method linearises it
  into the influence ``(x_i − R y_i) / ȳ``, whose variance is

  ``v = (s_x² − 2 R s_xy + R² s_y²) / ȳ²``

  (Deng, Knoblich and Lu 2018, eq. 4 for ``Var(x̄/ȳ) = v / n``).

References
----------
Deng, A., Knoblich, U. and Lu, J. (2018). Applying the Delta Method in Metric
Analytics: A Practical Guide with Novel Ideas. KDD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.experiments.stats._validation import as_values


@dataclass(frozen=True)
class ArmSummary:
    """An arm's estimate with the variance of its influence values (``Var(mean) = variance / n``).

    Parameters
    ----------
    n:
        Number of independent units (users, not impressions).
    mean:
        The arm's estimate: a per-unit mean or a ratio of per-unit sums.
    variance:
        Sample variance (``ddof=1``) of the units' influence values.
    """

    n: int
    mean: float
    variance: float

    @property
    def std_error(self) -> float:
        """``sqrt(variance / n)``: the standard error of :attr:`mean`."""
        return float(np.sqrt(self.variance / self.n)) if self.n > 0 else float("nan")


def ratio_moments(
    mean_x: np.ndarray | float,
    mean_y: np.ndarray | float,
    var_x: np.ndarray | float,
    var_y: np.ndarray | float,
    cov_xy: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio ``R = x̄ / ȳ`` and its influence variance ``(s_x² − 2R s_xy + R² s_y²) / ȳ²``.

    Vectorised (all arguments broadcast), so simulations can call it on running sums.
    A zero ``ȳ`` gives ``nan`` for both.
    """
    mx, my = np.asarray(mean_x, dtype=np.float64), np.asarray(mean_y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(my != 0, mx / np.where(my != 0, my, 1.0), np.nan)
        var = (var_x - 2.0 * ratio * cov_xy + ratio**2 * var_y) / my**2
    return ratio, np.where(my != 0, var, np.nan)


def summarize_mean(values: object) -> ArmSummary:
    """An arm of a per-unit mean metric: ``mean = ȳ``, ``variance = s_y²``."""
    y = as_values("values", values)
    var = float(np.var(y, ddof=1)) if y.size > 1 else float("nan")
    return ArmSummary(
        n=int(y.size), mean=float(np.mean(y)) if y.size else float("nan"), variance=var
    )


def summarize_ratio(numerator: object, denominator: object) -> ArmSummary:
    """An arm of a ratio metric ``Σ x / Σ y`` with its delta-method variance (module docstring)."""
    x = as_values("numerator", numerator)
    y = as_values("denominator", denominator, n=x.size)
    if x.size < 2:
        mean = float(x.sum() / y.sum()) if x.size and y.sum() != 0 else float("nan")
        return ArmSummary(n=int(x.size), mean=mean, variance=float("nan"))
    cov = np.cov(x, y, ddof=1)
    ratio, var = ratio_moments(x.mean(), y.mean(), cov[0, 0], cov[1, 1], cov[0, 1])
    return ArmSummary(n=int(x.size), mean=float(ratio), variance=float(var))


def linearize_ratio(numerator: object, denominator: object) -> np.ndarray:
    """Per-unit influence values ``(x_i − R y_i) / ȳ`` of the ratio ``R = x̄ / ȳ``.

    Their mean is 0 and their sample variance is :func:`summarize_ratio`'s ``variance``;
    CUPED regresses on them for ratio metrics.
    """
    x = as_values("numerator", numerator)
    y = as_values("denominator", denominator, n=x.size)
    mean_y = float(np.mean(y)) if y.size else 0.0
    if mean_y == 0:
        return np.full(x.shape, np.nan)
    ratio = float(np.mean(x)) / mean_y
    return (x - ratio * y) / mean_y
