"""OPE on the world generator: logs, exact truth and the demo entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.data.world.config import WorldConfig
from recops.data.world.truth import World
from recops.experiments.policies import EpsilonGreedyPolicy, GreedyPolicy, PlackettLucePolicy
from recops.models.base import Queries, Recommender
from recops.ope.importance import InverseProbabilityWeighting
from recops.ope.simulation import (
    noisy_oracle_scores,
    ope_batch,
    pair_noise,
    recommender_score_fn,
    run_ope_demo,
    sample_requests,
    simulate_logs,
    slate_batch,
    standardized,
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


class _HistoryEcho(Recommender):
    """Scores each item by how often the query's history holds it; records queries."""

    def __init__(self, item_ids: list[str]) -> None:
        self.item_ids_ = np.asarray(item_ids, dtype=object)
        self.seen: list[Queries] = []

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> _HistoryEcho:
        return self

    def score(self, queries: Queries) -> np.ndarray:
        self.seen.append(queries)
        column = {item: j for j, item in enumerate(self.item_ids_)}
        out = np.zeros((len(queries), len(self.item_ids_)))
        for row, history in enumerate(queries.histories):
            for item in history:
                out[row, column[item]] += 1.0
        return out


def test_recommender_score_fn_is_causal_and_ranks_unknown_items_last(world: World) -> None:
    known = [str(i) for i in world.item_ids(np.arange(10))]
    user = str(world.user_ids(np.array([0]))[0])
    clicks = pd.DataFrame(
        {
            "user_id": [user, user, user],
            "item_id": [known[1], known[2], known[2]],
            "timestamp": np.array([100, 200, 300], dtype=np.int64) + world.config.start_time,
        }
    )
    model = _HistoryEcho(known)
    fn = recommender_score_fn(model, world, clicks)
    items = np.array([[1, 2, 50]])  # item 50 is unknown to the model
    t = np.array([world.config.start_time + 250])
    scores = fn(np.array([0]), items, t)
    # Only the two events before t count: one click on item 1, one on item 2.
    np.testing.assert_array_equal(model.seen[0].histories[0], [known[1], known[2]])
    assert scores[0, 0] == scores[0, 1] == 1.0
    assert scores[0, 2] < scores[0, :2].min()


def test_standardized_keeps_the_ranking_and_unit_scale() -> None:
    def raw(user: np.ndarray, items: np.ndarray, t: np.ndarray) -> np.ndarray:
        return items.astype(float) * 10.0 + 3.0

    z = standardized(raw)(np.zeros(2), np.array([[0, 1, 2], [5, 3, 4]]), np.zeros(2))
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1.0)
    np.testing.assert_array_equal(np.argsort(z, axis=1), [[0, 1, 2], [1, 2, 0]])
