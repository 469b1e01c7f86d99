"""OPE on the world generator: logs, exact truth and the demo entry point."""

from __future__ import annotations

import numpy as np
import pytest

from recops.data.world.config import WorldConfig
from recops.data.world.truth import World
from recops.experiments.policies import EpsilonGreedyPolicy, GreedyPolicy, PlackettLucePolicy
from recops.ope.importance import InverseProbabilityWeighting
from recops.ope.simulation import (
    noisy_oracle_scores,
    ope_batch,
    pair_noise,
    run_ope_demo,
    sample_requests,
    simulate_logs,
    slate_batch,
    target_marginals,
    true_value,
)
from recops.ope.slate import SlateIndependentIPS


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(WorldConfig(n_users=200, n_items=300, days=4, seed=3))


def test_pair_noise_is_standard_normal_and_fixed() -> None:
    u = np.arange(50_000)
    z = pair_noise(u, u % 97, seed=1)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    np.testing.assert_array_equal(z, pair_noise(u, u % 97, seed=1))
    assert not np.allclose(z, pair_noise(u, u % 97, seed=2))


def test_logs_have_exact_propensities_and_ips_is_on_policy_unbiased(world: World) -> None:
    current = noisy_oracle_scores(world, noise=1.0, seed=1)
    policy = EpsilonGreedyPolicy(slate_size=2, epsilon=0.3)
    rng = np.random.default_rng(0)
    requests = sample_requests(world, current, 600, 8, rng)
    scores = current(requests.user, requests.candidates, requests.t)
    logs = simulate_logs(world, requests, scores, policy, rng)
    marg = target_marginals(scores, policy)
    fb = logs.feedback
    assert fb.slate_id is not None
    np.testing.assert_allclose(fb.pscore, marg[fb.slate_id, fb.action, fb.position])
    # Evaluating the logging policy itself: every weight is 1, IPS is the logged CTR.
    batch = ope_batch(logs, marg)
    np.testing.assert_allclose(batch.weights, 1.0)
    est = InverseProbabilityWeighting().estimate(batch)
    truth = float(true_value(world, requests, scores, policy).mean())
    assert est.ci_low <= truth <= est.ci_high
    iips = SlateIndependentIPS().estimate(slate_batch(logs, scores, policy, marg))
    assert iips.value == pytest.approx(2 * est.value)


def test_true_value_of_greedy_is_the_top_slots(world: World) -> None:
    current = noisy_oracle_scores(world, noise=0.0)
    requests = sample_requests(world, current, 20, 5, np.random.default_rng(1))
    scores = current(requests.user, requests.candidates, requests.t)
    value = true_value(world, requests, scores, GreedyPolicy(slate_size=2))
    top = requests.candidates[:, :2]
    expected = world.expected_clicks(requests.user, top, requests.t) / 2
    np.testing.assert_allclose(value, expected)


def test_demo_estimates_the_challenger_near_its_truth(world: World) -> None:
    result = run_ope_demo(
        world,
        noisy_oracle_scores(world, noise=1.5, seed=1),
        noisy_oracle_scores(world, noise=0.5, seed=2),
        PlackettLucePolicy(slate_size=2, temperature=1.0),
        PlackettLucePolicy(slate_size=2, temperature=0.5),
        n_requests=1500,
        n_candidates=8,
    )
    dr = result.report.by_name()["dr"]
    assert dr.ci_low <= result.challenger_true_ctr <= dr.ci_high
    assert result.report.truth == result.challenger_true_ctr
    assert 0 < result.logged_ctr < 1 and 0 < result.current_true_ctr < 1


def test_demo_checks_slate_sizes(world: World) -> None:
    scores = noisy_oracle_scores(world, noise=1.0)
    with pytest.raises(ValueError, match="same slate_size"):
        run_ope_demo(world, scores, scores, GreedyPolicy(slate_size=2), GreedyPolicy(slate_size=3))
