"""Welch's test against scipy and statsmodels, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

from recops.experiments.stats import ArmSummary, summarize_mean, welch_test

TOL = {"rel": 1e-9, "abs": 1e-12}


@pytest.fixture(params=[0, 1, 2])
def arms(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    control = rng.gamma(2.0, 3.0, 500 + 37 * request.param)
    treatment = rng.gamma(2.0, 3.3, 450) * (rng.random(450) < 0.9)
    return control, treatment


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_absolute_lift_equals_scipy_welch(
    arms: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    a, b = arms
    ours = welch_test(summarize_mean(a), summarize_mean(b), alpha)
    ref = stats.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(1 - alpha)
    assert ours.absolute.estimate == pytest.approx(b.mean() - a.mean(), **TOL)
    assert ours.absolute.p_value == pytest.approx(ref.pvalue, **TOL)
    assert ours.dof == pytest.approx(ref.df, **TOL)
    assert [ours.absolute.ci_low, ours.absolute.ci_high] == pytest.approx([ci.low, ci.high], **TOL)
    assert ours.absolute.estimate / ours.absolute.std_error == pytest.approx(ref.statistic, **TOL)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_absolute_lift_equals_statsmodels(
    arms: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    a, b = arms
    ours = welch_test(summarize_mean(a), summarize_mean(b), alpha)
    tstat, pvalue, dof = sm_ttest_ind(b, a, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=alpha, usevar="unequal"
    )
    assert ours.absolute.p_value == pytest.approx(pvalue, **TOL)
    assert ours.dof == pytest.approx(dof, **TOL)
    assert ours.absolute.estimate / ours.absolute.std_error == pytest.approx(tstat, **TOL)
    assert [ours.absolute.ci_low, ours.absolute.ci_high] == pytest.approx([low, high], **TOL)


def test_relative_lift_is_the_delta_method_on_the_ratio_of_means(
    arms: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b = arms
    ours = welch_test(summarize_mean(a), summarize_mean(b)).relative
    ma, mb = a.mean(), b.mean()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    # Gradient of f(ma, mb) = mb / ma - 1 is (-mb / ma², 1 / ma).
    se = math.sqrt((mb / ma**2) ** 2 * va + vb / ma**2)
    dof = stats.ttest_ind(b, a, equal_var=False).df
    half = stats.t.ppf(0.975, dof) * se
    assert ours.estimate == pytest.approx(mb / ma - 1, **TOL)
    assert ours.std_error == pytest.approx(se, **TOL)
    assert [ours.ci_low, ours.ci_high] == pytest.approx([mb / ma - 1 - half, mb / ma - 1 + half])
    assert ours.p_value == pytest.approx(2 * stats.t.sf(abs(mb / ma - 1) / se, dof), **TOL)


def test_relative_interval_covers_the_true_ratio_in_simulation() -> None:
    """The delta-method interval for the ratio of means covers ~95% at n = 400."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        a, b = rng.exponential(2.0, 400), rng.exponential(2.2, 400)
        rel = welch_test(summarize_mean(a), summarize_mean(b)).relative
        hits += rel.ci_low <= 0.1 <= rel.ci_high
    assert 0.92 <= hits / 400 <= 0.98


def test_undefined_cases_give_nan_not_errors() -> None:
    one = welch_test(ArmSummary(1, 1.0, float("nan")), summarize_mean([1.0, 2.0, 3.0]))
    assert math.isnan(one.absolute.p_value) and math.isnan(one.absolute.ci_low)
    zero_control = welch_test(summarize_mean([0.0, 0.0, 0.0]), summarize_mean([0.0, 1.0, 2.0]))
    assert math.isnan(zero_control.relative.estimate)
    assert zero_control.absolute.estimate == 1.0


@pytest.mark.parametrize("alpha", [0, 1, -0.1, "0.05", True])
def test_alpha_is_validated(alpha: object) -> None:
    arm = summarize_mean([1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="`alpha` must be a float in"):
        welch_test(arm, arm, alpha)  # type: ignore[arg-type]
