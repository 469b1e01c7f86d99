"""Confidence intervals and effective sample size for estimates built from per-unit terms.

Every estimator in :mod:`recops.ope` has the form ``V = mean(a) + mean(b) / mean(c)``
over independent units (rows, or slates): ``a`` the part that is a plain average, and
``b / c`` a self-normalised part (``c = 1`` when absent). Both interval methods work on
that form, so each estimator only states its terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from recops.ope._validation import check_alpha, check_positive_int

# Bounds the bootstrap's index matrix to ~8e6 int64 entries (64 MB) per chunk.
_BOOTSTRAP_CELLS_PER_CHUNK = 8_000_000


@dataclass(frozen=True)
class Terms:
    """Per-unit terms of an estimate ``V = mean(linear) + mean(num) / mean(den)``.

    Parameters
    ----------
    linear:
        The plain-average part, shape ``(n_units,)``.
    num, den:
        The self-normalised part (both or neither), shape ``(n_units,)``.
    """

    linear: np.ndarray
    num: np.ndarray | None = None
    den: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        """Number of independent units the estimate averages over."""
        return int(self.linear.shape[0])

    def value(self) -> float:
        """The point estimate."""
        total = float(np.mean(self.linear))
        if self.num is not None:
            den = self.den if self.den is not None else np.ones_like(self.num)
            mean_den = float(np.mean(den))
            # A target with no overlap at all gives Σw = 0: the ratio is undefined,
            # and 0 ("no evidence of reward") is what obp returns as well.
            total += float(np.mean(self.num)) / mean_den if mean_den > 0 else 0.0
        return total

    def influence(self) -> np.ndarray:
        """Per-unit influence function; its variance / n is the delta-method variance."""
        psi = self.linear - np.mean(self.linear)
        if self.num is not None:
            den = self.den if self.den is not None else np.ones_like(self.num)
            mean_den = float(np.mean(den))
            if mean_den > 0:
                ratio = float(np.mean(self.num)) / mean_den
                psi = psi + (self.num - ratio * den) / mean_den
        return psi


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` (0 when all weights are 0).

    Kish, L. (1965). *Survey Sampling*. Wiley.
    """
    w = np.asarray(weights, dtype=np.float64)
    sq = float(np.dot(w, w))
    return float(np.sum(w) ** 2 / sq) if sq > 0 else 0.0


def normal_interval(terms: Terms, alpha: float = 0.05) -> tuple[float, float, float]:
    """Normal-approximation interval by the delta method.

    Returns
    -------
    tuple of float
        ``(ci_low, ci_high, std_error)`` with ``std_error = sd(ψ) / √n`` for the
        influence function ``ψ`` of :meth:`Terms.influence`.
    """
    alpha = check_alpha(alpha)
    n = terms.n_units
    psi = terms.influence()
    se = float(np.std(psi, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    value = terms.value()
    return value - z * se, value + z * se, se


def bootstrap_interval(
    terms: Terms,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval, resampling units with replacement.

    Self-normalised parts are renormalised inside every resample (unlike obp, which
    reuses the full-sample normaliser), so the interval reflects their real variance.

    Returns
    -------
    tuple of float
        ``(ci_low, ci_high, std_error)``, the latter the standard deviation of the
        bootstrap replicates.
    """
    alpha = check_alpha(alpha)
    n_bootstrap = check_positive_int("n_bootstrap", n_bootstrap, low=2)
    rng = np.random.default_rng(random_state)
    n = terms.n_units
    columns = [terms.linear]
    if terms.num is not None:
        columns.append(terms.num)
        columns.append(terms.den if terms.den is not None else np.ones_like(terms.num))
    stacked = np.stack(columns, axis=1)
    replicates = np.empty(n_bootstrap)
    chunk = max(1, _BOOTSTRAP_CELLS_PER_CHUNK // n)
    for start in range(0, n_bootstrap, chunk):
        stop = min(n_bootstrap, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means = stacked[idx].mean(axis=1)
        value = means[:, 0].copy()
        if terms.num is not None:
            den = means[:, 2]
            safe = np.where(den > 0, den, 1.0)
            value += np.where(den > 0, means[:, 1] / safe, 0.0)
        replicates[start:stop] = value
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high), float(np.std(replicates, ddof=1))
