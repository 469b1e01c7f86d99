"""Estimator formulas on hand-computed toy cases, and their statistical behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from recops.ope.batch import OPEBatch
from recops.ope.direct import DirectMethod
from recops.ope.doubly_robust import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    SelfNormalizedDR,
    SwitchDoublyRobust,
)
from recops.ope.feedback import LoggedFeedback
from recops.ope.importance import InverseProbabilityWeighting, SelfNormalizedIPW

# Three rows: weights w = (0.5/0.25, 0.1/0.5, 0.9/0.9) = (2, 0.2, 1).
TOY = OPEBatch(
    reward=np.array([1.0, 0.0, 1.0]),
    pscore=np.array([0.25, 0.5, 0.9]),
    target_pscore=np.array([0.5, 0.1, 0.9]),
    q_hat_factual=np.array([0.6, 0.2, 0.5]),
    q_hat_target=np.array([0.4, 0.3, 0.7]),
)


def test_toy_values_by_hand() -> None:
    # IPS: (2*1 + 0.2*0 + 1*1)/3 = 1
    assert InverseProbabilityWeighting().estimate_policy_value(TOY) == pytest.approx(1.0)
    # Clipped at 1.5: (1.5 + 0 + 1)/3
    clipped = InverseProbabilityWeighting(max_weight=1.5).estimate_policy_value(TOY)
    assert clipped == pytest.approx(2.5 / 3)
    # SNIPS: 3 / (2 + 0.2 + 1)
    assert SelfNormalizedIPW().estimate_policy_value(TOY) == pytest.approx(3 / 3.2)
    # DM: mean(0.4, 0.3, 0.7)
    assert DirectMethod().estimate_policy_value(TOY) == pytest.approx(1.4 / 3)
    # DR: mean(0.4 + 2*0.4, 0.3 + 0.2*(-0.2), 0.7 + 1*0.5) = mean(1.2, 0.26, 1.2)
    assert DoublyRobust().estimate_policy_value(TOY) == pytest.approx(2.66 / 3)
    # SNDR: 1.4/3 + (0.8 - 0.04 + 0.5) / 3.2
    assert SelfNormalizedDR().estimate_policy_value(TOY) == pytest.approx(1.4 / 3 + 1.26 / 3.2)
    # Switch at τ=1.5 drops row 0's correction: mean(0.4, 0.26, 1.2)
    switch = SwitchDoublyRobust(max_weight=1.5).estimate_policy_value(TOY)
    assert switch == pytest.approx(1.86 / 3)
    # DRos λ=1: w̃ = w/(w²+1) = (0.4, 0.2/1.04, 0.5)
    dros = DoublyRobustWithShrinkage(shrinkage=1.0).estimate_policy_value(TOY)
    expected = (0.4 + 0.4 * 0.4 + 0.3 + (0.2 / 1.04) * (-0.2) + 0.7 + 0.5 * 0.5) / 3
    assert dros == pytest.approx(expected)


def test_dros_limits_are_dm_and_dr() -> None:
    dm = DirectMethod().estimate_policy_value(TOY)
    dr = DoublyRobust().estimate_policy_value(TOY)
    assert DoublyRobustWithShrinkage(shrinkage=0.0).estimate_policy_value(TOY) == pytest.approx(dm)
    inf = DoublyRobustWithShrinkage(shrinkage=float("inf")).estimate_policy_value(TOY)
    assert inf == pytest.approx(dr)
    assert SwitchDoublyRobust(max_weight=float("inf")).estimate_policy_value(TOY) == pytest.approx(
        dr
    )


def test_estimate_reports_ess_and_max_weight() -> None:
    est = InverseProbabilityWeighting().estimate(TOY)
    assert est.ess == pytest.approx(3.2**2 / (4 + 0.04 + 1))
    assert est.max_weight == pytest.approx(2.0)
    assert est.n == 3
    assert est.ci_low < est.value < est.ci_high
    assert est.to_dict()["estimator"] == "ips"


def test_dm_and_dr_need_a_reward_model() -> None:
    bare = OPEBatch(reward=[1.0], pscore=[0.5], target_pscore=[0.5])
    with pytest.raises(ValueError, match="DoublyRobust needs reward-model predictions"):
        DoublyRobust().estimate(bare)
    with pytest.raises(ValueError, match="DirectMethod"):
        DirectMethod().estimate(bare)


def _synthetic(seed: int, n: int = 4000) -> tuple[OPEBatch, float]:
    """Uniform logging over 4 actions, a skewed target, Bernoulli rewards; true value."""
    rng = np.random.default_rng(seed)
    mean_reward = np.array([0.1, 0.3, 0.5, 0.7])
    target = np.array([0.1, 0.1, 0.2, 0.6])
    action = rng.integers(0, 4, n)
    reward = (rng.random(n) < mean_reward[action]).astype(float)
    feedback = LoggedFeedback(action=action, reward=reward, pscore=np.full(n, 0.25), n_actions=4)
    # A deliberately biased reward model: DR must correct it, DM cannot.
    q_hat = np.broadcast_to((mean_reward + 0.1)[None, :, None], (n, 4, 1))
    batch = OPEBatch.from_action_dist(feedback, target[:, None], q_hat)
    return batch, float(target @ mean_reward)


ESTIMATORS = [
    InverseProbabilityWeighting(),
    SelfNormalizedIPW(),
    DoublyRobust(),
    SelfNormalizedDR(),
    SwitchDoublyRobust(),
    DoublyRobustWithShrinkage(),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.name)
def test_unbiased_family_covers_the_truth(estimator) -> None:
    covered = 0
    errors = []
    for seed in range(30):
        batch, truth = _synthetic(seed)
        est = estimator.estimate(batch)
        covered += est.ci_low <= truth <= est.ci_high
        errors.append(est.value - truth)
    # 95% intervals: at least 24 of 30 (P(fewer) < 1% under nominal coverage).
    assert covered >= 24
    assert abs(np.mean(errors)) < 0.01


def test_dm_inherits_the_reward_model_bias() -> None:
    batch, truth = _synthetic(0)
    assert DirectMethod().estimate_policy_value(batch) == pytest.approx(truth + 0.1)


def test_bootstrap_matches_normal_interval_roughly() -> None:
    batch, _ = _synthetic(1)
    for estimator in (InverseProbabilityWeighting(), SelfNormalizedIPW(), SelfNormalizedDR()):
        normal = estimator.estimate(batch)
        boot = estimator.estimate(batch, interval="bootstrap", n_bootstrap=400, random_state=0)
        assert boot.interval == "bootstrap"
        assert boot.std_error == pytest.approx(normal.std_error, rel=0.2)
        again = estimator.estimate(batch, interval="bootstrap", n_bootstrap=400, random_state=0)
        assert again.ci_low == boot.ci_low


def test_interval_method_is_validated() -> None:
    with pytest.raises(ValueError, match="`interval` must be 'normal' or 'bootstrap'"):
        InverseProbabilityWeighting().estimate(TOY, interval="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`alpha` must be a float in"):
        InverseProbabilityWeighting().estimate(TOY, alpha=1.5)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: InverseProbabilityWeighting(max_weight=0), "`max_weight` must be a positive"),
        (lambda: DoublyRobust(max_weight=-1.0), "`max_weight` must be a positive"),
        (lambda: SwitchDoublyRobust(max_weight=0.0), "`max_weight` must be a positive"),
        (lambda: DoublyRobustWithShrinkage(shrinkage=-1.0), "`shrinkage` must be a number"),
    ],
)
def test_hyper_parameters_are_validated(factory, message) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_tuned_switch_and_dros_report_their_parameter() -> None:
    batch, _ = _synthetic(2)
    assert "max_weight" in SwitchDoublyRobust().estimate(batch).params
    assert "shrinkage" in DoublyRobustWithShrinkage().estimate(batch).params


def test_no_overlap_gives_zero_ess_and_snips_zero() -> None:
    batch = OPEBatch(reward=[1.0, 0.0], pscore=[0.5, 0.5], target_pscore=[0.0, 0.0])
    est = SelfNormalizedIPW().estimate(batch)
    assert est.ess == 0.0
    assert est.value == 0.0


def test_tuned_estimate_equals_the_fixed_parameter_estimate() -> None:
    batch, _ = _synthetic(3)
    switch = SwitchDoublyRobust().estimate(batch)
    fixed = SwitchDoublyRobust(max_weight=switch.params["max_weight"]).estimate(batch)
    assert (switch.value, switch.ci_low) == (fixed.value, fixed.ci_low)
    dros = DoublyRobustWithShrinkage().estimate(batch)
    fixed_dros = DoublyRobustWithShrinkage(shrinkage=dros.params["shrinkage"]).estimate(batch)
    assert dros.value == fixed_dros.value
