"""The delta method for ratio metrics: a direct formula, scipy on the linearisation, a bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recops.experiments.stats import (
    linearize_ratio,
    summarize_mean,
    summarize_ratio,
    welch_test,
)

TOL = {"rel": 1e-9, "abs": 1e-12}


def _users(rng: np.random.Generator, n: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
    """Users with correlated clicks: heavy users see more impressions, CTR varies by user."""
    impressions = rng.poisson(rng.gamma(1.5, 8.0, n)) + 1
    clicks = rng.binomial(impressions, np.clip(rng.beta(2, 2 / ctr - 2, n), 0, 1))
    return clicks.astype(float), impressions.astype(float)


def test_ratio_variance_equals_the_deng_et_al_formula() -> None:
    x, y = _users(np.random.default_rng(0), 800, 0.08)
    arm = summarize_ratio(x, y)
    n, mx, my = x.size, x.mean(), y.mean()
    sxx, syy = x.var(ddof=1), y.var(ddof=1)
    sxy = np.cov(x, y, ddof=1)[0, 1]
    # Deng, Knoblich and Lu (2018), eq. 4: Var(x̄/ȳ) for n i.i.d. (x_i, y_i).
    var_ratio = (sxx / my**2 - 2 * mx * sxy / my**3 + mx**2 * syy / my**4) / n
    assert arm.mean == pytest.approx(x.sum() / y.sum(), **TOL)
    assert arm.std_error**2 == pytest.approx(var_ratio, **TOL)
    assert arm.n == 800


def test_linearised_units_reproduce_the_delta_method_and_scipy() -> None:
    rng = np.random.default_rng(1)
    (xa, ya), (xb, yb) = _users(rng, 600, 0.08), _users(rng, 650, 0.09)
    la, lb = linearize_ratio(xa, ya), linearize_ratio(xb, yb)
    assert la.mean() == pytest.approx(0.0, abs=1e-12)
    assert la.var(ddof=1) == pytest.approx(summarize_ratio(xa, ya).variance, **TOL)
    ours = welch_test(summarize_ratio(xa, ya), summarize_ratio(xb, yb))
    # Welch on the linearised units has the same standard error and degrees of freedom.
    ref = stats.ttest_ind(lb, la, equal_var=False)
    assert ours.dof == pytest.approx(ref.df, **TOL)
    assert ours.absolute.std_error == pytest.approx(
        np.sqrt(la.var(ddof=1) / la.size + lb.var(ddof=1) / lb.size), **TOL
    )


def test_ratio_standard_error_agrees_with_a_large_bootstrap() -> None:
    rng = np.random.default_rng(2)
    x, y = _users(rng, 2000, 0.05)
    arm = summarize_ratio(x, y)
    idx = rng.integers(0, x.size, size=(4000, x.size))
    boot = x[idx].sum(axis=1) / y[idx].sum(axis=1)
    assert arm.std_error == pytest.approx(np.std(boot, ddof=1), rel=0.05)


def test_treating_impressions_as_trials_understates_the_variance() -> None:
    """Why the delta method: the binomial SE over impressions is too small for clustered data."""
    x, y = _users(np.random.default_rng(3), 2000, 0.08)
    ratio = x.sum() / y.sum()
    naive = np.sqrt(ratio * (1 - ratio) / y.sum())
    assert summarize_ratio(x, y).std_error > 1.25 * naive


def test_mean_summary_and_validation() -> None:
    arm = summarize_mean([1.0, 2.0, 6.0])
    assert (arm.n, arm.mean, arm.variance) == (3, 3.0, 7.0)
    assert np.isnan(summarize_mean([4.0]).variance)
    assert np.isnan(summarize_ratio([1.0, 2.0], [0.0, 0.0]).mean)
    with pytest.raises(ValueError, match="`values` must be finite"):
        summarize_mean([1.0, np.nan])
    with pytest.raises(ValueError, match="`denominator` must have length 2"):
        summarize_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="`values` must be a 1-d array"):
        summarize_mean([[1.0, 2.0]])
