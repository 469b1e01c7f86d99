"""The per-row quantities every estimator needs, computed once from logs and a target.

Estimators never look at a full action distribution: IPS needs only the target's
probability of the *logged* action, and DM/DR need the reward model's prediction for
the logged action and its average under the target. Building these once keeps
evaluation of a million rows within a few seconds, and lets callers that know the
target's propensities directly (a ranking policy replaying logged candidates) skip the
``(n_rows, n_actions, len_list)`` array altogether.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recops.ope._validation import as_1d_float, check_action_dist, check_propensity
from recops.ope.feedback import LoggedFeedback


@dataclass(frozen=True)
class OPEBatch:
    """Per-row inputs of the standard (non-slate) estimators.

    Parameters
    ----------
    reward:
        Observed reward ``r_i``.
    pscore:
        Logging propensity ``π_b(a_i | x_i, k_i)`` in (0, 1].
    target_pscore:
        Target propensity ``π_e(a_i | x_i, k_i)`` in [0, 1] of the logged action.
    q_hat_factual:
        Optional reward-model prediction ``q̂(x_i, a_i, k_i)`` for the logged action.
    q_hat_target:
        Optional ``Σ_a π_e(a | x_i, k_i) q̂(x_i, a, k_i)``: the model's expected reward
        under the target policy.
    slate_id:
        Optional slate of each row (used by slate-aware reports, not by these estimators).
    """

    reward: np.ndarray
    pscore: np.ndarray
    target_pscore: np.ndarray
    q_hat_factual: np.ndarray | None = None
    q_hat_target: np.ndarray | None = None
    slate_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward = as_1d_float("reward", self.reward)
        n = reward.shape[0]
        if n == 0:
            raise ValueError("`reward` must not be empty: there is nothing to evaluate")
        pscore = as_1d_float("pscore", self.pscore, n)
        check_propensity("pscore", pscore, allow_zero=False)
        target = as_1d_float("target_pscore", self.target_pscore, n)
        check_propensity("target_pscore", target, allow_zero=True)
        values: dict[str, Any] = {"reward": reward, "pscore": pscore, "target_pscore": target}
        if (self.q_hat_factual is None) != (self.q_hat_target is None):
            raise ValueError("`q_hat_factual` and `q_hat_target` must be given together")
        if self.q_hat_factual is not None:
            values["q_hat_factual"] = as_1d_float("q_hat_factual", self.q_hat_factual, n)
            values["q_hat_target"] = as_1d_float("q_hat_target", self.q_hat_target, n)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def n_rows(self) -> int:
        """Number of logged rows."""
        return int(self.reward.shape[0])

    @property
    def weights(self) -> np.ndarray:
        """Importance weights ``w_i = π_e(a_i | x_i, k_i) / π_b(a_i | x_i, k_i)``."""
        return self.target_pscore / self.pscore

    def require_reward_model(self, estimator: str) -> tuple[np.ndarray, np.ndarray]:
        """``(q_hat_factual, q_hat_target)``, or a ValueError naming ``estimator``."""
        if self.q_hat_factual is None or self.q_hat_target is None:
            raise ValueError(
                f"{estimator} needs reward-model predictions: pass `estimated_rewards` "
                "(shape (n_rows, n_actions, len_list)) when building the batch"
            )
        return self.q_hat_factual, self.q_hat_target

    @classmethod
    def from_action_dist(
        cls,
        feedback: LoggedFeedback,
        action_dist: np.ndarray,
        estimated_rewards: np.ndarray | None = None,
    ) -> OPEBatch:
        """Build the batch from a target action distribution (obp's convention).

        Parameters
        ----------
        feedback:
            The logged rows.
        action_dist:
            Target policy ``π_e(a | x_i, k)``, shape ``(n_rows, n_actions, len_list)``, or
            ``(n_actions, len_list)`` when it does not depend on the row.
        estimated_rewards:
            Optional reward-model predictions ``q̂(x_i, a, k)``, shape
            ``(n_rows, n_actions, len_list)``; needed by DM and the DR family.

        Returns
        -------
        OPEBatch
        """
        n = feedback.n_rows
        dist = check_action_dist(action_dist, n, feedback.n_actions, feedback.len_list)
        rows = np.arange(n)
        a, k = feedback.action, feedback.position
        target = dist[a, k] if dist.ndim == 2 else dist[rows, a, k]
        q_fact = q_target = None
        if estimated_rewards is not None:
            q_hat = np.asarray(estimated_rewards, dtype=np.float64)
            shape = (n, feedback.n_actions, feedback.len_list)
            if q_hat.shape != shape:
                raise ValueError(f"`estimated_rewards` must have shape {shape} (got {q_hat.shape})")
            q_at_position = q_hat[rows, :, k]
            pi_at_position = dist[:, k].T if dist.ndim == 2 else dist[rows, :, k]
            q_fact = q_hat[rows, a, k]
            q_target = np.einsum("ij,ij->i", q_at_position, pi_at_position)
        return cls(
            reward=feedback.reward,
            pscore=feedback.pscore,
            target_pscore=target,
            q_hat_factual=q_fact,
            q_hat_target=q_target,
            slate_id=feedback.slate_id,
        )
