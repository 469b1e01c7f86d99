"""Bootstrap confidence intervals over users, and paired comparisons of two models.

Users are the unit of resampling: per-user metric values are (roughly) independent
across users, while the items in one user's list are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.models.baselines._params import check_float, check_int

# Resamples are drawn in chunks so memory stays at chunk × n_users indices.
_CHUNK = 256


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile-bootstrap confidence interval.

    For per-user values :math:`m_1..m_n`, ``mean`` is :math:`\\bar m`; ``low`` and
    ``high`` are the :math:`(1-\\ell)/2` and :math:`(1+\\ell)/2` quantiles of the
    means of ``n_boot`` resamples of the users with replacement (Efron &
    Tibshirani, 1993, ch. 13), :math:`\\ell` = ``level``.
    """

    mean: float
    low: float
    high: float
    level: float = 0.95

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share at least one point."""
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, float]:
        """``{"mean", "low", "high", "level"}`` for JSON reports."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "level": self.level}


@dataclass(frozen=True)
class PairedDifference:
    """Paired bootstrap of the mean difference :math:`\\bar a - \\bar b` over the same users.

    Each resample draws the same users for both models, so per-user correlation
    between the models cancels and the interval is narrower than two independent
    intervals suggest. ``p_value`` is the two-sided bootstrap p-value
    :math:`2 \\min(P^*(\\Delta \\le 0), P^*(\\Delta \\ge 0))`, capped at 1.
    """

    difference: Interval
    p_value: float

    @property
    def significant(self) -> bool:
        """True when the interval of the difference excludes 0."""
        return self.difference.low > 0 or self.difference.high < 0


def _resampled_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = values.shape[-1]
    means = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, n_boot - start), n))
        means.append(values[..., idx].mean(axis=-1))
    return np.concatenate(means, axis=-1)


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-d array (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile-bootstrap interval of the mean of per-user values.

    Parameters
    ----------
    values:
        One value per user.
    n_boot:
        Number of resamples (10..1_000_000).
    level:
        Confidence level in (0, 1).
    seed:
        Seed of the resampling; the same seed gives the same interval.

    Returns
    -------
    Interval
    """
    arr = _check_values(values, "values")
    n_boot = check_int("n_boot", n_boot, 10, 1_000_000)
    level = check_float("level", level, 0.0, 1.0, low_inclusive=False)
    check_int("seed", seed, 0)
    means = _resampled_means(arr, n_boot, seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(arr.mean()), float(low), float(high), level)


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> PairedDifference:
    """Paired bootstrap of ``mean(a) - mean(b)`` for two models on the same users.

    Parameters
    ----------
    a, b:
        Per-user values of the two models, aligned by user.
    n_boot, level, seed:
        As in :func:`bootstrap_ci`.

    Returns
    -------
    PairedDifference
    """
    a = _check_values(a, "a")
    b = _check_values(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired_bootstrap: `a` and `b` must be aligned by user (got {a.shape} and {b.shape})"
        )
    n_boot = check_int("n_boot", n_boot, 10, 1_000_000)
    level = check_float("level", level, 0.0, 1.0, low_inclusive=False)
    check_int("seed", seed, 0)
    diff = a - b
    means = _resampled_means(diff, n_boot, seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    p = min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return PairedDifference(Interval(float(diff.mean()), float(low), float(high), level), p)


def intervals_overlap(a: Interval, b: Interval) -> bool:
    """Whether two models' intervals overlap (a conservative "no clear winner")."""
    return a.overlaps(b)
