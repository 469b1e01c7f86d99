"""The Direct Method: trust a reward model, ignore the propensities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from recops.ope.base import BaseEstimator
from recops.ope.batch import OPEBatch
from recops.ope.intervals import Terms


@dataclass(frozen=True)
class DirectMethod(BaseEstimator[OPEBatch]):
    """Direct Method (DM).

    ``V̂_DM = (1/n) Σ_i Σ_a π_e(a | x_i, k_i) q̂(x_i, a, k_i)``

    Low variance, but biased by exactly the reward model's error under the target
    policy; its interval covers only the sampling of contexts, not that bias.

    References
    ----------
    Beygelzimer, A. and Langford, J. (2009). The offset tree for learning with partial
    labels. KDD.
    """

    name: ClassVar[str] = "dm"

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = Σ_a π_e(a | x_i, k_i) q̂(x_i, a, k_i)``."""
        _, q_target = batch.require_reward_model("DirectMethod")
        return Terms(linear=q_target)

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The weights DM does not use, reported so its overlap can be judged."""
        return batch.weights
