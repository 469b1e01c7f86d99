"""Doubly robust estimators: a reward model as baseline, importance weights for its error.

All four share
``V̂ = (1/n) Σ_i [ Σ_a π_e(a | x_i, k_i) q̂(x_i, a, k_i) + w̃_i (r_i - q̂(x_i, a_i, k_i)) ]``
and differ only in the weight ``w̃_i`` given to the correction (and SNDR normalises it).
Fit ``q̂`` with cross-fitting (:mod:`recops.ope.reward_model`) so the correction is not
computed on rows the model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from recops.ope._validation import check_positive_float
from recops.ope.base import BaseEstimator
from recops.ope.batch import OPEBatch
from recops.ope.intervals import Terms

# Candidate shrinkage values for DRos tuning: λ is on the scale of w², so a wide
# geometric grid covers "almost DM" to "almost DR".
_SHRINKAGE_GRID = (*(float(x) for x in np.logspace(-3, 6, 28)), float("inf"))
_SWITCH_QUANTILES = np.linspace(0.5, 1.0, 26)


def _corrected(batch: OPEBatch, weight: np.ndarray, estimator: str) -> Terms:
    q_fact, q_target = batch.require_reward_model(estimator)
    return Terms(linear=q_target + weight * (batch.reward - q_fact))


def _tune_by_mse(
    batch: OPEBatch,
    grid: tuple[float, ...],
    modified_weight: Callable[[np.ndarray, float], np.ndarray],
    delta: float = 0.05,
) -> float:
    """Pick the hyper-parameter minimising an upper bound on the estimated MSE.

    ``MSE(λ) ≈ Var(terms_λ) / n + (|mean(d)| + z_{1-δ/2} sd(d) / √n)²`` with
    ``d_i = (w_i - w̃_i(λ)) (r_i - q̂_i)``, the part of DR's correction that ``λ``
    removes (Su, Dimakopoulou, Krishnamurthy and Dudík, 2020, Section 5).
    """
    q_fact, q_target = batch.require_reward_model("tuning")
    w = batch.weights
    residual = batch.reward - q_fact
    n = batch.n_rows
    z = NormalDist().inv_cdf(1 - delta / 2)
    best, best_mse = grid[-1], float("inf")
    for lam in grid:
        w_mod = modified_weight(w, lam)
        terms = q_target + w_mod * residual
        removed = (w - w_mod) * residual
        bias = abs(float(np.mean(removed))) + z * float(np.std(removed)) / np.sqrt(n)
        mse = float(np.var(terms, ddof=1)) / n + bias**2
        if mse < best_mse:
            best, best_mse = lam, mse
    return best


@dataclass(frozen=True)
class DoublyRobust(BaseEstimator[OPEBatch]):
    """Doubly Robust (DR), optionally with weight clipping.

    ``V̂_DR = (1/n) Σ_i [ q̂_π(x_i, k_i) + min(w_i, λ) (r_i - q̂(x_i, a_i, k_i)) ]`` with
    ``q̂_π(x, k) = Σ_a π_e(a | x, k) q̂(x, a, k)``.

    Unbiased when the propensities are right (``λ = ∞``), and low variance when the
    reward model is good.

    Parameters
    ----------
    max_weight:
        Clipping threshold ``λ`` on the weights (``inf`` for none).

    References
    ----------
    Dudík, M., Erhan, D., Langford, J. and Li, L. (2014). Doubly robust policy
    evaluation and optimization. Statistical Science 29(4).
    """

    max_weight: float = float("inf")
    name: ClassVar[str] = "dr"

    def __post_init__(self) -> None:
        check_positive_float("max_weight", self.max_weight)

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The (clipped) weights ``min(w_i, λ)``."""
        return np.minimum(batch.weights, self.max_weight)

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = q̂_π(x_i, k_i) + min(w_i, λ)(r_i - q̂_i)``."""
        return _corrected(batch, self.importance_weights(batch), "DoublyRobust")


@dataclass(frozen=True)
class SelfNormalizedDR(BaseEstimator[OPEBatch]):
    """Self-normalised Doubly Robust (SNDR).

    ``V̂_SNDR = (1/n) Σ_i q̂_π(x_i, k_i) + Σ_i w_i (r_i - q̂(x_i, a_i, k_i)) / Σ_i w_i``

    References
    ----------
    Kallus, N. and Uehara, M. (2019). Intrinsically efficient, stable, and bounded
    off-policy evaluation for reinforcement learning. NeurIPS.
    """

    name: ClassVar[str] = "sndr"

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The raw weights ``w_i``."""
        return batch.weights

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = q̂_π(x_i, k_i)``, ``b_i = w_i (r_i - q̂_i)``, ``c_i = w_i``."""
        q_fact, q_target = batch.require_reward_model("SelfNormalizedDR")
        w = batch.weights
        return Terms(linear=q_target, num=w * (batch.reward - q_fact), den=w)


@dataclass(frozen=True)
class SwitchDoublyRobust(BaseEstimator[OPEBatch]):
    """Switch Doubly Robust (Switch-DR): DR where the weight is small, DM where it is not.

    ``V̂_Switch = (1/n) Σ_i [ q̂_π(x_i, k_i) + 1{w_i ≤ τ} w_i (r_i - q̂(x_i, a_i, k_i)) ]``

    Parameters
    ----------
    max_weight:
        The switching threshold ``τ``; ``None`` tunes it on the data by minimising an
        estimated MSE bound over quantiles of the weights (Su et al., 2020).

    References
    ----------
    Wang, Y.-X., Agarwal, A. and Dudík, M. (2017). Optimal and adaptive off-policy
    evaluation in contextual bandits. ICML.
    """

    max_weight: float | None = None
    name: ClassVar[str] = "switch_dr"

    def __post_init__(self) -> None:
        if self.max_weight is not None:
            check_positive_float("max_weight", self.max_weight)

    @staticmethod
    def _switch(w: np.ndarray, tau: float) -> np.ndarray:
        return np.where(w <= tau, w, 0.0)

    def threshold(self, batch: OPEBatch) -> float:
        """The threshold ``τ`` used on ``batch`` (tuned when ``max_weight`` is None)."""
        if self.max_weight is not None:
            return self.max_weight
        positive = batch.weights[batch.weights > 0]
        if positive.size == 0:
            return float("inf")
        quantiles = np.quantile(positive, _SWITCH_QUANTILES)
        grid = (*(float(q) for q in quantiles), float("inf"))
        return _tune_by_mse(batch, grid, self._switch)

    def params(self, batch: OPEBatch) -> dict[str, float]:
        """``{"max_weight": τ}``."""
        return {"max_weight": self.threshold(batch)}

    def resolved(self, batch: OPEBatch) -> SwitchDoublyRobust:
        """A copy with ``τ`` tuned on ``batch`` (itself when ``τ`` is fixed)."""
        if self.max_weight is not None:
            return self
        return replace(self, max_weight=self.threshold(batch))

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The raw weights ``w_i`` (the overlap diagnostic)."""
        return batch.weights

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = q̂_π(x_i, k_i) + 1{w_i ≤ τ} w_i (r_i - q̂_i)``."""
        weight = self._switch(batch.weights, self.threshold(batch))
        return _corrected(batch, weight, "SwitchDoublyRobust")


@dataclass(frozen=True)
class DoublyRobustWithShrinkage(BaseEstimator[OPEBatch]):
    """Doubly Robust with optimistic shrinkage (DRos).

    ``V̂_DRos = (1/n) Σ_i [ q̂_π(x_i, k_i) + w̃_i (r_i - q̂(x_i, a_i, k_i)) ]`` with
    ``w̃_i = λ w_i / (w_i² + λ)`` (``λ = 0``: DM; ``λ = ∞``: DR).

    Parameters
    ----------
    shrinkage:
        ``λ ≥ 0``; ``None`` tunes it on a geometric grid by minimising an estimated
        MSE bound (Su et al., 2020).

    References
    ----------
    Su, Y., Dimakopoulou, M., Krishnamurthy, A. and Dudík, M. (2020). Doubly robust
    off-policy evaluation with shrinkage. ICML.
    """

    shrinkage: float | None = None
    name: ClassVar[str] = "dros"

    def __post_init__(self) -> None:
        if self.shrinkage is not None and (
            isinstance(self.shrinkage, bool)
            or not isinstance(self.shrinkage, int | float)
            or self.shrinkage < 0
        ):
            raise ValueError(f"`shrinkage` must be a number >= 0 (got {self.shrinkage!r})")

    @staticmethod
    def _shrink(w: np.ndarray, lam: float) -> np.ndarray:
        if np.isinf(lam):
            return w
        if lam == 0:
            return np.zeros_like(w)
        return lam * w / (w**2 + lam)

    def shrinkage_used(self, batch: OPEBatch) -> float:
        """The ``λ`` used on ``batch`` (tuned when ``shrinkage`` is None)."""
        if self.shrinkage is not None:
            return float(self.shrinkage)
        return _tune_by_mse(batch, _SHRINKAGE_GRID, self._shrink)

    def params(self, batch: OPEBatch) -> dict[str, float]:
        """``{"shrinkage": λ}``."""
        return {"shrinkage": self.shrinkage_used(batch)}

    def resolved(self, batch: OPEBatch) -> DoublyRobustWithShrinkage:
        """A copy with ``λ`` tuned on ``batch`` (itself when ``λ`` is fixed)."""
        if self.shrinkage is not None:
            return self
        return replace(self, shrinkage=self.shrinkage_used(batch))

    def importance_weights(self, batch: OPEBatch) -> np.ndarray:
        """The raw weights ``w_i`` (the overlap diagnostic)."""
        return batch.weights

    def terms(self, batch: OPEBatch) -> Terms:
        """``a_i = q̂_π(x_i, k_i) + w̃_i (r_i - q̂_i)``."""
        weight = self._shrink(batch.weights, self.shrinkage_used(batch))
        return _corrected(batch, weight, "DoublyRobustWithShrinkage")
