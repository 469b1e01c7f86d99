"""Importance-sampling estimators: unbiased given correct logged propensities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from recops.ope._validation import check_positive_float
from recops.ope.base import BaseEstimator
from recops.ope.batch import OPEBatch
from recops.ope.intervals import Terms


@dataclass(frozen=True)
class InverseProbabilityWeighting(BaseEstimator[OPEBatch]):
    """Inverse Probability Weighting (IPS), optionally with weight clipping.

    ``V̂_IPS = (1/n) Σ_i min(w_i, λ) r_i`` with ``w_i = π_e(a_i | x_i, k_i) / π_b(a_i | x_i, k_i)``

    Unbiased when ``λ = ∞`` and every action the target may take was loggable;
    clipping trades that for lower variance.

    Parameters
    ----------
    max_weight:
        Clipping threshold ``λ`` (``inf`` for none).

    References
    ----------
    Precup, D., Sutton, R. S. and Singh, S. (2000). Eligibility traces for off-policy
    policy evaluation. ICML. Strehl, A. et al. (2010). Learning from logged implicit
    exploration data. NeurIPS.
    """

    max_weight: float = float("inf")
    name: ClassVar[str] = "ips"

    def __post_init__(self) -> None:
        check_positive_float("max_weight", self.max_weight)

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The (clipped) weights ``min(w_i, λ)``."""
        return np.minimum(batch.weights, self.max_weight)

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = min(w_i, λ) r_i``."""
        return Terms(linear=self.importance_weights(batch) * batch.reward)


@dataclass(frozen=True)
class SelfNormalizedIPW(BaseEstimator[OPEBatch]):
    """Self-normalised IPS (SNIPS).

    ``V̂_SNIPS = Σ_i w_i r_i / Σ_i w_i``

    Slightly biased, consistent, bounded by the reward range, and usually far less
    variable than IPS when weights are large.

    References
    ----------
    Swaminathan, A. and Joachims, T. (2015). The self-normalized estimator for
    counterfactual learning. NeurIPS.
    """

    name: ClassVar[str] = "snips"

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The raw weights ``w_i``."""
        return batch.weights

    def terms(self, batch: OPEBatch) -> Terms:
        """``b_i = w_i r_i``, ``c_i = w_i``."""
        w = batch.weights
        return Terms(linear=np.zeros_like(w), num=w * batch.reward, den=w)
