"""Reward models and cross-fitting."""

from __future__ import annotations

import numpy as np
import pytest

from recops.ope.feedback import LoggedFeedback
from recops.ope.reward_model import (
    ActionPositionMeanModel,
    LogisticRewardModel,
    RewardData,
    cross_fit_predict,
)


def _data(n: int = 3000, seed: int = 0) -> tuple[RewardData, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_actions, len_list = 4, 2
    features = rng.normal(size=(n, n_actions, 1))
    logit = -1.0 + 1.5 * features[..., 0][..., None] - 0.8 * np.arange(len_list)[None, None, :]
    truth = 1 / (1 + np.exp(-logit))
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, len_list, n)
    reward = (rng.random(n) < truth[np.arange(n), action, position]).astype(float)
    fb = LoggedFeedback(
        action=action, reward=reward, pscore=np.full(n, 0.125), n_actions=4, position=position
    )
    return RewardData.from_feedback(fb, features), truth


def test_action_position_mean_by_hand() -> None:
    data = RewardData(
        action=np.array([0, 0, 1, 1]),
        position=np.array([0, 0, 0, 1]),
        reward=np.array([1.0, 0.0, 1.0, 0.0]),
        n_actions=2,
        len_list=2,
    )
    q = ActionPositionMeanModel(prior_strength=1.0).fit(data).predict(data)
    assert q.shape == (4, 2, 2)
    # Position 0 rate 2/3; (a=0,k=0): (1 + 2/3)/(2 + 1); (a=1,k=1): (0 + 0)/(1 + 1).
    assert q[0, 0, 0] == pytest.approx((1 + 2 / 3) / 3)
    assert q[0, 1, 1] == pytest.approx(0.0)
    # Unseen (a=0,k=1) falls back to position 1's rate.
    assert q[0, 0, 1] == pytest.approx(0.0)


def test_logistic_model_recovers_the_truth() -> None:
    data, truth = _data()
    q = LogisticRewardModel(l2=1e-4, action_effects=False).fit(data).predict(data)
    assert q.shape == truth.shape
    assert np.mean(np.abs(q - truth)) < 0.03


def test_cross_fitting_predicts_each_row_out_of_fold() -> None:
    data, _ = _data(n=200)
    # A model that memorises: with cross-fitting a row never sees its own reward.
    q = cross_fit_predict(lambda: ActionPositionMeanModel(prior_strength=1e-9), data, n_folds=2)
    full = ActionPositionMeanModel(prior_strength=1e-9).fit(data).predict(data)
    assert q.shape == full.shape
    assert not np.allclose(q, full)
    again = cross_fit_predict(lambda: ActionPositionMeanModel(prior_strength=1e-9), data, 2)
    np.testing.assert_array_equal(q, again)


def test_errors_name_the_argument() -> None:
    data, _ = _data(n=10)
    with pytest.raises(ValueError, match="`n_folds` must be an int >= 2"):
        cross_fit_predict(ActionPositionMeanModel, data, n_folds=1)
    with pytest.raises(ValueError, match=r"`features` must have shape \(10, 4, n_features\)"):
        RewardData(
            action=data.action,
            position=data.position,
            reward=data.reward,
            n_actions=4,
            len_list=2,
            features=np.zeros((10, 3, 1)),
        )
    with pytest.raises(RuntimeError, match="call fit"):
        LogisticRewardModel().predict(data)
    with pytest.raises(ValueError, match="`prior_strength` must be a positive"):
        ActionPositionMeanModel(prior_strength=0.0)
