"""Two-sample drift statistics: PSI (an effect size), Kolmogorov–Smirnov and χ² (tests).

Each compares a *reference* sample (the training window) with a *current* one (recent
serving traffic) of one feature:

* :func:`psi` — the population stability index of two binned distributions,
  ``PSI = Σ_b (c_b − r_b) · ln(c_b / r_b)`` over bins ``b`` with reference and current
  shares ``r_b`` and ``c_b``; an empty bin's share is replaced by ``epsilon`` (1e-4, the
  convention of Evidently), so a bin new in one window counts without dividing by zero.
  It is the symmetrised Kullback–Leibler divergence ``KL(c‖r) + KL(r‖c)`` of the binned
  distributions. Rules of thumb: < 0.1 no shift, 0.1–0.25 a moderate one, > 0.25 a
  major one (Siddiqi 2006). :func:`numeric_psi` bins on the reference's quantiles,
  :func:`categorical_psi` takes one bin per category.
* :func:`ks_test` — the two-sample Kolmogorov–Smirnov statistic
  ``D = sup_x |F_ref(x) − F_cur(x)|`` of the empirical distribution functions, with
  Smirnov's asymptotic p-value ``P(D_n > D)`` for ``n = round(n_r n_c / (n_r + n_c))``
  (the one-sample statistic's exact distribution, as scipy's ``ks_2samp(method="asymp")``);
  monitoring windows hold thousands of values, where it is accurate.
* :func:`chi_square_test` — Pearson's χ² test of homogeneity of the 2 × K table of
  category counts (reference and current rows): ``X² = Σ (O − E)² / E`` with
  ``E = row total · column total / N`` and ``K − 1`` degrees of freedom (categories seen
  in either window), as ``scipy.stats.chi2_contingency(correction=False)``. Unlike a
  goodness-of-fit test against the reference's shares (Evidently's ``chisquare``), it
  counts the reference's own sampling noise.

With thousands of values per window a test finds even a negligible shift significant,
and with a few dozen a PSI is noise: :mod:`recops.monitoring.drift` asks for both.

References
----------
Siddiqi, N. (2006). Credit Risk Scorecards. Wiley. Yurdakul, B. (2018). Statistical
properties of population stability index. PhD thesis, Western Michigan University.
Smirnov, N. (1948). Table for estimating the goodness of fit of empirical distributions.
Ann. Math. Statist. 19. Pearson, K. (1900). Phil. Mag. 50.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from recops.monitoring._validation import as_labels, as_values, check_epsilon

#: The zero-share stand-in of :func:`psi` (Evidently's for samples under 10,000).
DEFAULT_EPSILON = 1e-4


@dataclass(frozen=True)
class PSIResult:
    """A population stability index with the binned distributions it was computed on.

    Parameters
    ----------
    value:
        The PSI (see the module docstring).
    labels:
        One label per bin: ``"[a, b)"`` for a numeric bin, the category otherwise.
    reference_shares, current_shares:
        Each window's share of values per bin, before ``epsilon`` replaces zeros.
    cuts:
        Numeric bins: the cut points (bin ``j`` is ``[cuts[j-1], cuts[j])``, the outer
        bins open); empty for categories.
    """

    value: float
    labels: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    cuts: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Every field, tuples as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class KSTest:
    """The two-sample Kolmogorov–Smirnov test (module docstring)."""

    statistic: float
    p_value: float
    n_reference: int
    n_current: int


@dataclass(frozen=True)
class ChiSquareTest:
    """Pearson's χ² test of homogeneity of two samples of categories (module docstring)."""

    statistic: float
    p_value: float
    dof: int
    n_reference: int
    n_current: int


def _counts_as_shares(name: str, counts: object) -> np.ndarray:
    arr = as_values(name, counts)
    if arr.size == 0 or np.any(arr < 0) or arr.sum() <= 0:
        raise ValueError(f"`{name}` must be non-negative counts with a positive total")
    return arr / arr.sum()


def psi(
    reference_counts: object, current_counts: object, *, epsilon: float = DEFAULT_EPSILON
) -> float:
    """``Σ_b (c_b − r_b) ln(c_b / r_b)`` of two windows' counts (or shares) per bin.

    Parameters
    ----------
    reference_counts, current_counts:
        Counts per bin, in the same bin order (normalised to shares here).
    epsilon:
        Share used in place of an empty bin's zero, in (0, 0.01].
    """
    eps = check_epsilon(epsilon)
    r = _counts_as_shares("reference_counts", reference_counts)
    c = _counts_as_shares("current_counts", current_counts)
    if r.size != c.size:
        raise ValueError(
            f"`current_counts` must have one count per bin of `reference_counts` "
            f"({r.size}; got {c.size})"
        )
    r, c = np.where(r > 0, r, eps), np.where(c > 0, c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_cuts(reference: object, n_bins: int = 10) -> np.ndarray:
    """Cut points of ``n_bins`` equal-frequency bins of ``reference``, framed by its range.

    The inner cuts are the reference's ``j / n_bins`` quantiles (ties merged). Two more
    frame the reference's range, its minimum and the next float above its maximum, so
    that current values below or above everything the reference saw fall in bins of
    their own (reference share 0) instead of diluting the outer bins.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 2 <= n_bins <= 1000:
        raise ValueError(f"`n_bins` must be an int in 2..1000 (got {n_bins!r})")
    ref = as_values("reference", reference)
    if ref.size == 0:
        raise ValueError("`reference` must not be empty")
    inner = np.quantile(ref, np.arange(1, n_bins) / n_bins)
    frame = [ref.min(), np.nextafter(ref.max(), np.inf)]
    return np.unique(np.concatenate([inner, frame]))


def _bin_labels(cuts: np.ndarray) -> tuple[str, ...]:
    bounds = [-np.inf, *cuts.tolist(), np.inf]
    return tuple(f"[{a:.6g}, {b:.6g})" for a, b in itertools.pairwise(bounds))


def numeric_psi(
    reference: object,
    current: object,
    *,
    bins: int | Sequence[float] = 10,
    epsilon: float = DEFAULT_EPSILON,
) -> PSIResult:
    """PSI of a numeric feature on the reference's quantile bins (or on given cuts).

    Parameters
    ----------
    reference, current:
        The two samples (finite numbers).
    bins:
        An int: that many reference quantile bins (:func:`quantile_cuts`). A sequence:
        increasing cut points, bin ``j`` being ``[cuts[j-1], cuts[j])`` with open outer
        bins — e.g. ``numpy.histogram_bin_edges(...)[1:-1]`` reproduces
        ``numpy.histogram``'s counts of values inside its range.
    epsilon:
        See :func:`psi`.
    """
    ref = as_values("reference", reference)
    cur = as_values("current", current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError(
            f"`reference` and `current` must not be empty (got {ref.size} and {cur.size})"
        )
    if isinstance(bins, int) and not isinstance(bins, bool):
        cuts = quantile_cuts(ref, bins)
    else:
        cuts = as_values("bins", bins)
        if cuts.size == 0 or np.any(np.diff(cuts) <= 0):
            raise ValueError("`bins` must be an int or strictly increasing cut points")
    n = cuts.size + 1
    r = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=n) / ref.size
    c = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=n) / cur.size
    return PSIResult(
        value=psi(r, c, epsilon=epsilon),
        labels=_bin_labels(cuts),
        reference_shares=tuple(r.tolist()),
        current_shares=tuple(c.tolist()),
        cuts=tuple(cuts.tolist()),
    )


def category_counts(
    reference: object, current: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted categories seen in either sample, and each sample's counts of them."""
    ref = as_labels("reference", reference)
    cur = as_labels("current", current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError(
            f"`reference` and `current` must not be empty (got {ref.size} and {cur.size})"
        )
    categories, codes = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    k = categories.size
    r = np.bincount(codes[: ref.size], minlength=k)
    c = np.bincount(codes[ref.size :], minlength=k)
    return categories, r, c


def categorical_psi(
    reference: object, current: object, *, epsilon: float = DEFAULT_EPSILON
) -> PSIResult:
    """PSI of a categorical feature, one bin per category seen in either sample."""
    categories, r, c = category_counts(reference, current)
    return PSIResult(
        value=psi(r, c, epsilon=epsilon),
        labels=tuple(str(v) for v in categories),
        reference_shares=tuple((r / r.sum()).tolist()),
        current_shares=tuple((c / c.sum()).tolist()),
    )


def ks_test(reference: object, current: object) -> KSTest:
    """Two-sample Kolmogorov–Smirnov test, two-sided, asymptotic p-value (module docstring)."""
    ref = np.sort(as_values("reference", reference))
    cur = np.sort(as_values("current", current))
    n_r, n_c = ref.size, cur.size
    if n_r == 0 or n_c == 0:
        raise ValueError(f"`reference` and `current` must not be empty (got {n_r} and {n_c})")
    points = np.concatenate([ref, cur])
    gap = np.searchsorted(ref, points, side="right") / n_r
    gap -= np.searchsorted(cur, points, side="right") / n_c
    d = float(np.max(np.abs(gap)))
    n = round(n_r * n_c / (n_r + n_c))
    p = float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))
    return KSTest(statistic=d, p_value=p, n_reference=n_r, n_current=n_c)


def chi_square_test(reference: object, current: object) -> ChiSquareTest:
    """Pearson's χ² test of homogeneity of two samples of categories (module docstring)."""
    _, r, c = category_counts(reference, current)
    table = np.vstack([r, c]).astype(np.float64)
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    p = float(stats.chi2.sf(statistic, dof)) if dof > 0 else 1.0
    return ChiSquareTest(
        statistic=statistic,
        p_value=p,
        dof=dof,
        n_reference=int(r.sum()),
        n_current=int(c.sum()),
    )
