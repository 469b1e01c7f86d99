"""Ranking policies: exact propensities, checked against enumeration and sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
    action_distribution,
)

SCORES = np.array([1.0, 0.3, -0.5, 2.0, 0.0])


def _enumerated_marginals(policy: RankingPolicy, scores: np.ndarray) -> np.ndarray:
    """P(i at k) by summing the exact probabilities of every possible slate."""
    n, k = scores.shape[0], policy.slate_size
    marg = np.zeros((n, k))
    total = 0.0
    for slate in itertools.permutations(range(n), k):
        p = policy.prefix_probabilities(scores, np.array(slate))[-1]
        total += p
        marg[list(slate), np.arange(k)] += p
    assert total == pytest.approx(1.0)
    return marg


@pytest.mark.parametrize(
    "policy",
    [
        PlackettLucePolicy(slate_size=3, temperature=0.7),
        PlackettLucePolicy(slate_size=2, temperature=5.0),
        EpsilonGreedyPolicy(slate_size=3, epsilon=0.2),
        EpsilonGreedyPolicy(slate_size=2, epsilon=0.5, explore_top=3),
        GreedyPolicy(slate_size=3),
    ],
    ids=repr,
)
def test_marginals_are_exact(policy: RankingPolicy) -> None:
    marg, err = policy.marginals(SCORES)
    np.testing.assert_allclose(marg, _enumerated_marginals(policy, SCORES), atol=1e-12)
    np.testing.assert_allclose(marg.sum(axis=0), 1.0)
    assert np.all(err == 0)


def test_plackett_luce_first_position_is_the_softmax() -> None:
    policy = PlackettLucePolicy(slate_size=2, temperature=0.5)
    marg, _ = policy.marginals(SCORES)
    softmax = np.exp(SCORES / 0.5) / np.exp(SCORES / 0.5).sum()
    np.testing.assert_allclose(marg[:, 0], softmax)


def test_monte_carlo_marginals_state_their_error() -> None:
    exact = PlackettLucePolicy(slate_size=3, temperature=0.7)
    mc = PlackettLucePolicy(slate_size=3, temperature=0.7, max_exact_cells=1, n_samples=20_000)
    truth, _ = exact.marginals(SCORES)
    estimate, err = mc.marginals(SCORES)
    assert np.all(err[truth > 0.01] > 0)
    # Every entry within 4.5 standard errors (all 15 hold with high probability).
    assert np.all(np.abs(estimate - truth) <= 4.5 * err + 1e-12)


def test_sampled_slates_follow_the_marginals() -> None:
    policy = PlackettLucePolicy(slate_size=2, temperature=1.0)
    rng = np.random.default_rng(0)
    counts = np.zeros((5, 2))
    n = 4000
    for _ in range(n):
        counts[policy._draw(SCORES, rng), [0, 1]] += 1
    marg, _ = policy.marginals(SCORES)
    se = np.sqrt(marg * (1 - marg) / n)
    assert np.all(np.abs(counts / n - marg) <= 4.5 * se + 1e-9)


def test_sample_reports_propensities_of_what_it_shows() -> None:
    policy = EpsilonGreedyPolicy(slate_size=3, epsilon=0.3)
    sample = policy.sample(SCORES, np.random.default_rng(3))
    marg, _ = policy.marginals(SCORES)
    np.testing.assert_allclose(sample.propensity, marg[sample.items, np.arange(3)])
    assert sample.slate_propensity == pytest.approx(sample.prefix_propensity[-1])
    assert np.all(np.diff(sample.prefix_propensity) <= 0)


def test_epsilon_greedy_explores_only_its_pool() -> None:
    policy = EpsilonGreedyPolicy(slate_size=2, epsilon=1.0, explore_top=3)
    marg, _ = policy.marginals(SCORES)
    ranking = np.argsort(-SCORES)
    assert np.all(marg[ranking[3:]] == 0)
    np.testing.assert_allclose(marg[ranking[:3]], 1 / 3)


def test_action_distribution_stacks_requests() -> None:
    scores = np.stack([SCORES, -SCORES])
    dist = action_distribution(GreedyPolicy(slate_size=2), scores)
    assert dist.shape == (2, 5, 2)
    assert dist[0, 3, 0] == 1.0 and dist[1, 2, 0] == 1.0


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: PlackettLucePolicy(slate_size=2, temperature=0.0), "`temperature` must be"),
        (lambda: EpsilonGreedyPolicy(slate_size=2, epsilon=1.5), "`epsilon` must be a float"),
        (lambda: EpsilonGreedyPolicy(slate_size=3, explore_top=2), "`explore_top` must be an int"),
        (lambda: GreedyPolicy(slate_size=0), "`slate_size` must be a positive int"),
    ],
)
def test_parameters_are_validated(factory, message) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_scores_and_slates_are_validated() -> None:
    policy = PlackettLucePolicy(slate_size=3)
    with pytest.raises(ValueError, match="at least slate_size=3 candidates"):
        policy.marginals(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="`scores` must be finite"):
        policy.marginals(np.array([1.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="distinct indices"):
        policy.prefix_probabilities(SCORES, np.array([0, 0, 1]))


@pytest.mark.parametrize(
    "policy",
    [PlackettLucePolicy(slate_size=3, temperature=0.7), EpsilonGreedyPolicy(slate_size=2)],
    ids=repr,
)
def test_batch_methods_agree_with_single_requests(policy: RankingPolicy) -> None:
    scores = np.random.default_rng(1).normal(size=(7, 6))
    batch = policy.marginals_batch(scores)
    for r in range(7):
        np.testing.assert_allclose(batch[r], policy.marginals(scores[r])[0], atol=1e-12)
    items, propensity, prefix = policy.sample_batch(scores, np.random.default_rng(2))
    assert items.shape == propensity.shape == prefix.shape == (7, policy.slate_size)
    for r in range(7):
        np.testing.assert_allclose(
            propensity[r], batch[r][items[r], np.arange(policy.slate_size)], atol=1e-12
        )
        np.testing.assert_allclose(
            prefix[r], policy.prefix_probabilities(scores[r], items[r]), atol=1e-12
        )
