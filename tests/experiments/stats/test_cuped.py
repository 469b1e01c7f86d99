"""CUPED: θ is the pooled OLS slope, the lift stays unbiased, the variance shrinks by ρ²."""

from __future__ import annotations

import numpy as np
import pytest

from recops.experiments.stats import CupedArm, cuped, summarize_mean, summarize_ratio, welch_test

TOL = {"rel": 1e-9, "abs": 1e-12}


def _mean_arms(rng: np.random.Generator, n: int, lift: float) -> tuple[CupedArm, CupedArm]:
    arms = []
    for extra in (0.0, lift):
        level = rng.gamma(2.0, 2.0, n)
        arms.append(
            CupedArm(post=level + extra + rng.normal(0, 1, n), pre=level + rng.normal(0, 1, n))
        )
    return arms[0], arms[1]


def test_mean_cuped_equals_the_regression_formulas() -> None:
    control, treatment = _mean_arms(np.random.default_rng(0), 700, 0.3)
    adj = cuped(control, treatment)
    post = np.concatenate([control.post, treatment.post])
    pre = np.concatenate([control.pre, treatment.pre])
    theta = np.polyfit(pre, post, 1)[0]
    assert adj.theta == pytest.approx(theta, **TOL)
    for arm, summary in ((control, adj.control), (treatment, adj.treatment)):
        assert summary.mean == pytest.approx(
            arm.post.mean() - theta * (arm.pre.mean() - pre.mean()), **TOL
        )
        assert summary.variance == pytest.approx(np.var(arm.post - theta * arm.pre, ddof=1), **TOL)
    raw = welch_test(summarize_mean(control.post), summarize_mean(treatment.post))
    adjusted = welch_test(adj.control, adj.treatment)
    assert adj.variance_reduction == pytest.approx(
        1 - adjusted.absolute.std_error**2 / raw.absolute.std_error**2, **TOL
    )


def test_variance_reduction_is_the_squared_correlation() -> None:
    control, treatment = _mean_arms(np.random.default_rng(1), 20_000, 0.0)
    rho = np.corrcoef(control.post, control.pre)[0, 1]
    assert cuped(control, treatment).variance_reduction == pytest.approx(rho**2, abs=0.01)


def test_cuped_lift_is_unbiased_with_correct_coverage() -> None:
    rng = np.random.default_rng(2)
    estimates, hits = [], 0
    for _ in range(300):
        adj = cuped(*_mean_arms(rng, 300, 0.5))
        lift = welch_test(adj.control, adj.treatment).absolute
        estimates.append(lift.estimate)
        hits += lift.ci_low <= 0.5 <= lift.ci_high
    assert np.mean(estimates) == pytest.approx(0.5, abs=0.02)
    assert 0.92 <= hits / 300 <= 0.98


def _ratio_arm(rng: np.random.Generator, n: int, lift: float, new_users: float = 0.0) -> CupedArm:
    taste = rng.beta(2, 20, n)
    imp, pre_imp = rng.poisson(12, n) + 1, rng.poisson(12, n) * (rng.random(n) >= new_users)
    return CupedArm(
        post=rng.binomial(imp, np.clip(taste * (1 + lift), 0, 1)).astype(float),
        pre=rng.binomial(pre_imp, taste).astype(float),
        post_den=imp.astype(float),
        pre_den=pre_imp.astype(float),
    )


def test_ratio_cuped_regresses_the_linearisations() -> None:
    rng = np.random.default_rng(3)
    control, treatment = _ratio_arm(rng, 3000, 0.0), _ratio_arm(rng, 3000, 0.1, new_users=0.2)
    adj = cuped(control, treatment)
    raw_c = summarize_ratio(control.post, control.post_den)
    assert adj.variance_reduction > 0.1
    # Adjusted estimates stay on the ratio's scale and near the raw ones.
    assert adj.control.mean == pytest.approx(raw_c.mean, rel=0.05)
    # The lift's variance is the sum of the adjusted arms' variances.
    lift = welch_test(adj.control, adj.treatment).absolute
    assert lift.std_error**2 == pytest.approx(
        adj.control.variance / 3000 + adj.treatment.variance / 3000, **TOL
    )


def test_ratio_cuped_is_unbiased() -> None:
    rng = np.random.default_rng(4)
    true_ctr = 2 / 22
    lifts, raw = [], []
    for _ in range(200):
        c, t = _ratio_arm(rng, 800, 0.0), _ratio_arm(rng, 800, 0.2, new_users=0.3)
        adj = cuped(c, t)
        lifts.append(adj.treatment.mean - adj.control.mean)
        raw.append(
            summarize_ratio(t.post, t.post_den).mean - summarize_ratio(c.post, c.post_den).mean
        )
    assert np.mean(lifts) == pytest.approx(0.2 * true_ctr, rel=0.1)
    assert np.var(lifts) < np.var(raw)


def test_a_constant_pre_period_means_no_adjustment() -> None:
    arm = CupedArm(post=np.arange(10.0), pre=np.ones(10))
    adj = cuped(arm, CupedArm(post=np.arange(10.0) + 1, pre=np.ones(10)))
    assert adj.theta == 0.0 and adj.variance_reduction == 0.0
    assert adj.treatment.mean - adj.control.mean == 1.0


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="`pre` must have length 3"):
        CupedArm(post=[1.0, 2.0, 3.0], pre=[1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be given together"):
        CupedArm(post=np.ones(3), pre=np.ones(3), post_den=np.ones(3))
    mean_arm = CupedArm(post=np.ones(3), pre=np.ones(3))
    ratio_arm = CupedArm(np.ones(3), np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="both be mean or both be ratio"):
        cuped(mean_arm, ratio_arm)
    with pytest.raises(ValueError, match="at least 2 units per arm"):
        cuped(CupedArm(post=np.ones(1), pre=np.ones(1)), mean_arm)
