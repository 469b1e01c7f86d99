"""Targets given as a ranking policy over the logged candidates."""

from __future__ import annotations

import numpy as np
import pytest

from recops.experiments.policies import EpsilonGreedyPolicy, GreedyPolicy, PlackettLucePolicy
from recops.models.base import Queries, Recommender
from recops.ope.batch import OPEBatch
from recops.ope.feedback import LoggedFeedback
from recops.ope.importance import InverseProbabilityWeighting
from recops.ope.target import batch_from_ranking_policy, model_candidate_scores


def test_matches_the_action_distribution_path() -> None:
    rng = np.random.default_rng(0)
    n_req, n_cand, k = 50, 6, 2
    scores = rng.normal(size=(n_req, n_cand))
    logging = EpsilonGreedyPolicy(slate_size=k, epsilon=0.5)
    target = PlackettLucePolicy(slate_size=k, temperature=0.5)
    actions, positions, pscores, slates = [], [], [], []
    for r in range(n_req):
        sample = logging.sample(scores[r], rng)
        actions += list(sample.items)
        positions += [0, 1]
        pscores += list(sample.propensity)
        slates += [r, r]
    fb = LoggedFeedback(
        action=np.array(actions),
        reward=rng.random(2 * n_req) < 0.3,
        pscore=np.array(pscores),
        n_actions=n_cand,
        position=np.array(positions),
        slate_id=np.array(slates),
    )
    q_hat = rng.random((n_cand, k))
    batch = batch_from_ranking_policy(fb, [np.arange(n_cand)] * n_req, list(scores), target, q_hat)
    dist = np.stack([target.marginals(scores[r])[0] for r in np.array(slates)])
    reference = OPEBatch.from_action_dist(fb, dist, np.broadcast_to(q_hat, dist.shape))
    np.testing.assert_allclose(batch.target_pscore, reference.target_pscore)
    assert batch.q_hat_target is not None and reference.q_hat_target is not None
    np.testing.assert_allclose(batch.q_hat_target, reference.q_hat_target)
    ips = InverseProbabilityWeighting()
    assert ips.estimate_policy_value(batch) == pytest.approx(ips.estimate_policy_value(reference))


def test_items_outside_the_candidates_get_zero_target_mass() -> None:
    fb = LoggedFeedback(
        action=[0, 3], reward=[1.0, 1.0], pscore=[0.5, 0.5], n_actions=4, slate_id=[0, 1]
    )
    batch = batch_from_ranking_policy(
        fb, [np.array([0, 1]), np.array([1, 2])], [np.array([2.0, 1.0])] * 2, GreedyPolicy()
    )
    np.testing.assert_allclose(batch.target_pscore, [1.0, 0.0])


def test_shapes_are_checked() -> None:
    fb = LoggedFeedback(action=[0], reward=[1.0], pscore=[0.5], n_actions=2, slate_id=[0])
    with pytest.raises(ValueError, match="one entry per request"):
        batch_from_ranking_policy(fb, [np.array([0, 1])], [], GreedyPolicy())
    with pytest.raises(ValueError, match="one score per candidate"):
        batch_from_ranking_policy(fb, [np.array([0, 1])], [np.array([1.0])], GreedyPolicy())


class _FixedScores(Recommender):
    """A minimal recommender whose scores are a fixed per-user table."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.item_ids_ = np.array(["a", "b", "c"], dtype=object)

    def fit(self, interactions, items=None):  # type: ignore[no-untyped-def]
        return self

    def score(self, queries: Queries) -> np.ndarray:
        return np.array([self.table[u] for u in queries.user_ids], dtype=float)


def test_model_candidate_scores_picks_the_candidates_columns() -> None:
    model = _FixedScores({"u1": [0.1, 0.5, -np.inf], "u2": [2.0, 1.0, 0.0]})
    queries = Queries(
        user_ids=["u1", "u2"],
        histories=[np.array([]), np.array([])],
        history_times=[np.array([]), np.array([])],
        now=np.array([0, 0]),
    )
    scores = model_candidate_scores(model, queries, [np.array(["c", "b"]), np.array(["a"])])
    # -inf (e.g. an excluded item) becomes the row's lowest finite score minus one.
    np.testing.assert_allclose(scores[0], [-0.9, 0.5])
    np.testing.assert_allclose(scores[1], [2.0])
    with pytest.raises(ValueError, match="candidate 'z' is unknown to the model"):
        model_candidate_scores(model, queries, [np.array(["z"]), np.array(["a"])])
