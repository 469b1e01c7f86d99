"""The softmax bandit: Beta-posterior CTRs learned online, Plackett–Luce head on top."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from recops.experiments.bandit import SoftmaxBandit
from recops.experiments.serving_policy import PlackettLuceServing, build_policy


def _bandit(**kwargs: object) -> SoftmaxBandit:
    params: dict[str, object] = {"n_items": 50, "pool": 6, "explore_slots": 2}
    return SoftmaxBandit(**(params | kwargs))  # type: ignore[arg-type]


def test_posterior_mean_is_the_beta_posterior_mean() -> None:
    bandit = _bandit(prior_ctr=0.04, prior_weight=25.0)
    bandit.update([3, 3, 7, 9], shown=[10, 5, 2, 0], clicked=[2, 1, 0, 0])
    bandit.update(np.array([7]), shown=1, clicked=True)
    a0, b0 = 0.04 * 25.0, 0.96 * 25.0
    expected = [
        stats.beta(a0 + 3, b0 + 15 - 3).mean(),
        stats.beta(a0 + 1, b0 + 3 - 1).mean(),
        stats.beta(a0, b0).mean(),  # no impressions: the prior
    ]
    np.testing.assert_allclose(bandit.posterior_ctr([3, 7, 9]), expected, rtol=1e-12)


def test_a_click_counts_once_its_impression_has() -> None:
    bandit = _bandit()
    bandit.update([4], shown=0, clicked=1)  # the click joined before its exposure
    assert bandit.posterior_ctr([4])[0] == pytest.approx(0.05)
    bandit.update([4], shown=1, clicked=0)
    assert bandit.posterior_ctr([4])[0] == pytest.approx((1.0 + 1.0) / 21.0)


def test_scores_gain_bonus_times_the_logit_of_the_posterior_ctr() -> None:
    bandit = _bandit(temperature=0.7, bonus=2.0)
    bandit.update([0, 1, 2], shown=[100, 100, 0], clicked=[30, 0, 0])
    scores = np.random.default_rng(0).normal(size=8)
    rows = np.array([0, 1, 2, 10, 11, 12, 13, 14])
    ctr = bandit.posterior_ctr(rows)
    adjusted = scores + 2.0 * np.log(ctr / (1 - ctr))
    plain = PlackettLuceServing(temperature=0.7, pool=6, explore_slots=2)
    np.testing.assert_allclose(
        bandit.marginals(scores, 5, rows), plain.marginals(adjusted, 5), atol=1e-15
    )
    slate = bandit.select(scores, 5, np.random.default_rng(1), rows)
    marg = plain.marginals(adjusted, 5)
    np.testing.assert_allclose(slate.propensity, marg[slate.items, np.arange(5)], atol=1e-15)
    # The slate reports the model's scores, not the adjusted ones.
    np.testing.assert_array_equal(slate.scores, scores[slate.items])


def test_without_bonus_it_is_the_plain_policy() -> None:
    bandit = _bandit(bonus=0.0)
    bandit.update([1], shown=50, clicked=40)
    scores = np.random.default_rng(2).normal(size=7)
    plain = PlackettLuceServing(pool=6, explore_slots=2)
    np.testing.assert_allclose(
        bandit.marginals(scores, 4, np.arange(7)), plain.marginals(scores, 4), atol=1e-15
    )


def test_it_learns_which_item_users_click() -> None:
    """Equal model scores; true CTRs differ: feedback moves the best item to the top."""
    bandit = _bandit(n_items=10, pool=10, explore_slots=3, bonus=3.0, temperature=0.5)
    true_ctr = np.linspace(0.01, 0.2, 10)
    rows, scores = np.arange(10), np.zeros(10)
    rng = np.random.default_rng(3)
    before = bandit.marginals(scores, 3, rows)[9, 0]
    for _ in range(1500):
        slate = bandit.select(scores, 3, rng, rows)
        shown = rows[slate.items]
        bandit.update(shown, shown=1, clicked=rng.random(3) < true_ctr[shown])
    after = bandit.marginals(scores, 3, rows)[:, 0]
    assert before == pytest.approx(0.1)
    # Softmax exploration settles on good items, not necessarily the very best one.
    assert after[7:].sum() > 0.8
    assert int(np.argmax(after)) >= 7


def test_reset_forgets_and_spec_leaves_out_the_catalog_size() -> None:
    bandit = build_policy({"kind": "softmax_bandit", "pool": 6, "explore_slots": 2}, n_items=20)
    assert isinstance(bandit, SoftmaxBandit)
    bandit.update([1, 2], shown=3, clicked=1)
    bandit.reset()
    np.testing.assert_allclose(bandit.posterior_ctr([1, 2]), 0.05)
    assert "n_items" not in bandit.spec()
    # Two bandits of one spec do not share counts.
    other = build_policy(bandit.spec(), n_items=20)
    bandit.update([1], shown=5, clicked=5)
    assert isinstance(other, SoftmaxBandit)
    assert other.impressions.sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 0}, "`n_items` must be a positive int"),
        ({"prior_ctr": 1.0}, "`prior_ctr` must be a float in (0, 1)"),
        ({"prior_weight": 0.0}, "`prior_weight` must be a positive finite float"),
        ({"bonus": -1.0}, "`bonus` must be a finite float >= 0"),
        ({"temperature": -1.0}, "`temperature` must be a positive finite float"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _bandit(**kwargs)


def test_bad_feedback_and_rows_are_refused() -> None:
    bandit = _bandit()
    with pytest.raises(ValueError, match=r"`item_rows` must be rows of the model's catalog"):
        bandit.update([50], shown=1, clicked=0)
    with pytest.raises(ValueError, match="`item_rows` must be a 1-d array of integer"):
        bandit.update([1.5], shown=1, clicked=0)
    with pytest.raises(ValueError, match="`shown` must be a scalar or have the shape"):
        bandit.update([1, 2], shown=[1, 1, 1], clicked=0)
    with pytest.raises(ValueError, match="`clicked` must hold finite counts >= 0"):
        bandit.update([1], shown=1, clicked=-1)
    scores = np.zeros(4)
    with pytest.raises(ValueError, match=r"`rows` .* is required by the softmax bandit"):
        bandit.select(scores, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="`rows` must have one entry per candidate score"):
        bandit.select(scores, 2, np.random.default_rng(0), rows=[1, 2])
    assert bandit.impressions.sum() == 0  # nothing refused was counted
