"""Reward models ``q̂(x, a, k)`` for DM and the DR family, fitted with cross-fitting.

A reward model fitted on all rows and then used to correct those same rows makes DR's
correction term biased towards zero (it has seen the residuals it corrects).
Cross-fitting splits the rows into folds and predicts each fold with a model fitted on
the others (Chernozhukov et al., 2018, *Double/debiased machine learning*).

Two models are provided:

* :class:`ActionPositionMeanModel`: smoothed click rate per (action, position); no
  context. On the Open Bandit Dataset this is as good as anything with its features.
* :class:`LogisticRewardModel`: L2-regularised logistic regression on per-action
  features plus position and action indicators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
from scipy.optimize import minimize

from recops.ope._validation import check_positive_float, check_positive_int
from recops.ope.feedback import LoggedFeedback


@dataclass(frozen=True)
class RewardData:
    """What a reward model learns from and predicts for.

    Parameters
    ----------
    action, position, reward:
        Logged rows, shape ``(n_rows,)``.
    n_actions, len_list:
        Sizes of the action and position spaces.
    features:
        Optional per-(row, action) features, shape ``(n_rows, n_actions, n_features)``
        (e.g. a user-item affinity, or the logging model's score of each candidate).
    """

    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    n_actions: int
    len_list: int
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.action.shape[0]
        if self.features is not None and self.features.shape[:2] != (n, self.n_actions):
            raise ValueError(
                f"`features` must have shape ({n}, {self.n_actions}, n_features) "
                f"(got {self.features.shape})"
            )

    @classmethod
    def from_feedback(
        cls, feedback: LoggedFeedback, features: np.ndarray | None = None
    ) -> RewardData:
        """Rows of ``feedback``, with optional per-(row, action) ``features``."""
        feats = None if features is None else np.asarray(features, dtype=np.float64)
        if feats is not None and feats.ndim == 2:
            feats = feats[:, :, None]
        return cls(
            action=feedback.action,
            position=feedback.position,
            reward=feedback.reward,
            n_actions=feedback.n_actions,
            len_list=feedback.len_list,
            features=feats,
        )

    def take(self, rows: np.ndarray) -> RewardData:
        """The subset ``rows``."""
        return RewardData(
            action=self.action[rows],
            position=self.position[rows],
            reward=self.reward[rows],
            n_actions=self.n_actions,
            len_list=self.len_list,
            features=None if self.features is None else self.features[rows],
        )


class RewardModel(Protocol):
    """``fit`` on logged rows; ``predict`` ``q̂`` for every (row, action, position)."""

    def fit(self, data: RewardData) -> Self:
        """Learn from the logged (factual) rows of ``data``."""
        ...

    def predict(self, data: RewardData) -> np.ndarray:
        """Predictions of shape ``(n_rows, n_actions, len_list)``."""
        ...


@dataclass
class ActionPositionMeanModel:
    """Click rate per (action, position), shrunk towards the position's rate.

    ``q̂(a, k) = (Σ_{i: a_i=a, k_i=k} r_i + m r̄_k) / (n_{a,k} + m)``

    Parameters
    ----------
    prior_strength:
        ``m``, the number of pseudo-observations at the position mean.
    """

    prior_strength: float = 10.0

    def __post_init__(self) -> None:
        check_positive_float("prior_strength", self.prior_strength, allow_inf=False)
        self.table_: np.ndarray | None = None

    def fit(self, data: RewardData) -> Self:
        """Count rewards per (action, position)."""
        shape = (data.n_actions, data.len_list)
        flat = data.action * data.len_list + data.position
        clicks = np.bincount(flat, weights=data.reward, minlength=shape[0] * shape[1])
        counts = np.bincount(flat, minlength=shape[0] * shape[1]).astype(np.float64)
        clicks, counts = clicks.reshape(shape), counts.reshape(shape)
        per_position = clicks.sum(axis=0) / np.maximum(counts.sum(axis=0), 1.0)
        m = self.prior_strength
        self.table_ = (clicks + m * per_position) / (counts + m)
        return self

    def predict(self, data: RewardData) -> np.ndarray:
        """The fitted table, repeated for every row."""
        if self.table_ is None:
            raise RuntimeError("ActionPositionMeanModel: call fit() before predict()")
        n = data.action.shape[0]
        return np.broadcast_to(self.table_, (n, *self.table_.shape)).copy()


@dataclass
class LogisticRewardModel:
    """L2-regularised logistic regression ``q̂ = σ(β·f(x, a) + γ_a + δ_k + b)``.

    Features ``f(x, a)`` come from :attr:`RewardData.features` (standardised on the
    training rows); the action and position effects are one-hot terms. Fitted by
    L-BFGS on the mean log-loss plus ``l2 / 2 ‖θ‖²`` (the intercept is not penalised).

    Parameters
    ----------
    l2:
        Ridge penalty (per row).
    action_effects:
        Whether to include a per-action intercept ``γ_a``.
    max_iter:
        L-BFGS iterations.
    """

    l2: float = 1e-3
    action_effects: bool = True
    max_iter: int = 200

    def __post_init__(self) -> None:
        check_positive_float("l2", self.l2, allow_inf=False)
        check_positive_int("max_iter", self.max_iter)
        self.coef_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def _design(self, data: RewardData, action: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Rows of ``[1, f(x_i, a_i), onehot(a_i), onehot(k_i)]`` for the given pairs."""
        n = action.shape[0]
        blocks = [np.ones((*action.shape, 1))]
        if data.features is not None:
            assert self.mean_ is not None and self.scale_ is not None
            rows = np.arange(n) if action.ndim == 1 else np.arange(n)[:, None]
            feats = data.features[rows, action]
            blocks.append((feats - self.mean_) / self.scale_)
        if self.action_effects:
            blocks.append(np.eye(data.n_actions)[action])
        blocks.append(np.eye(data.len_list)[position])
        return np.concatenate(blocks, axis=-1)

    def fit(self, data: RewardData) -> Self:
        """Fit on the factual rows."""
        if data.features is not None:
            factual = data.features[np.arange(data.action.shape[0]), data.action]
            self.mean_ = factual.mean(axis=0)
            self.scale_ = np.where(factual.std(axis=0) > 0, factual.std(axis=0), 1.0)
        x = self._design(data, data.action, data.position)
        y = data.reward
        n = x.shape[0]
        penalty = np.full(x.shape[1], self.l2)
        penalty[0] = 0.0

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ theta
            # log(1 + e^z) - y z, computed stably.
            value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * theta**2)
            grad = x.T @ (1.0 / (1.0 + np.exp(-z)) - y) / n + penalty * theta
            return float(value), grad

        start = np.zeros(x.shape[1])
        mean_y = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        start[0] = np.log(mean_y / (1 - mean_y))
        result = minimize(
            loss, start, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter}
        )
        self.coef_ = result.x
        return self

    def predict(self, data: RewardData) -> np.ndarray:
        """``σ(·)`` for every (row, action, position)."""
        if self.coef_ is None:
            raise RuntimeError("LogisticRewardModel: call fit() before predict()")
        n = data.action.shape[0]
        out = np.empty((n, data.n_actions, data.len_list))
        actions = np.broadcast_to(np.arange(data.n_actions), (n, data.n_actions))
        for k in range(data.len_list):
            positions = np.full((n, data.n_actions), k)
            z = self._design(data, actions, positions) @ self.coef_
            out[:, :, k] = 1.0 / (1.0 + np.exp(-z))
        return out


def cross_fit_predict(
    model_factory: Callable[[], RewardModel],
    data: RewardData,
    n_folds: int = 2,
    random_state: int | None = 0,
) -> np.ndarray:
    """Predict every row with a model fitted on the other folds.

    Parameters
    ----------
    model_factory:
        A callable returning a fresh, unfitted :class:`RewardModel` (a class, or e.g.
        ``lambda: LogisticRewardModel(l2=1e-2)``).
    data:
        The logged rows.
    n_folds:
        Number of folds ``K ≥ 2``; each row's prediction comes from a model that did
        not see it.
    random_state:
        Seed of the random fold assignment.

    Returns
    -------
    numpy.ndarray
        ``q̂`` of shape ``(n_rows, n_actions, len_list)``.
    """
    n_folds = check_positive_int("n_folds", n_folds, low=2)
    n = data.action.shape[0]
    if n < n_folds:
        raise ValueError(f"`n_folds`={n_folds} exceeds the number of rows ({n})")
    rng = np.random.default_rng(random_state)
    fold = rng.permutation(np.arange(n) % n_folds)
    out = np.empty((n, data.n_actions, data.len_list))
    for f in range(n_folds):
        held_out = fold == f
        model = model_factory().fit(data.take(~held_out))
        out[held_out] = model.predict(data.take(held_out))
    return out
