"""Slate estimators: the value of a whole ranked list, from per-position rewards.

The value of a slate policy is the expected *sum* of rewards over positions,
``V(π) = E[Σ_k r_k]``, estimated per slate and averaged over slates. The three
estimators differ in the assumption about how rewards depend on the slate, which
decides the propensity that is needed:

* standard IPS: none — the whole slate's probability (unbiased, highest variance);
* independent IPS: a position's reward depends only on the item shown there — the
  item-position marginal;
* reward-interaction IPS: the reward at ``k`` depends on the items at ``1..k``
  (cascade) — the probability of the top-``k`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from recops.ope._validation import as_1d_float, check_propensity
from recops.ope.base import BaseEstimator
from recops.ope.intervals import Terms

_KINDS = ("slate", "item_position", "cascade")


@dataclass(frozen=True)
class SlateBatch:
    """Per-row inputs of the slate estimators; rows of one slate share ``slate_id``.

    Parameters
    ----------
    slate_id:
        Slate of each row.
    reward:
        Reward observed at each row's position.
    pscore_slate, target_pscore_slate:
        Logging / target probability of the whole logged slate (same on its rows).
    pscore_item_position, target_pscore_item_position:
        Logging / target probability of the row's item at the row's position.
    pscore_cascade, target_pscore_cascade:
        Logging / target probability of the logged slate's prefix up to the row's
        position.

    Only the pairs an estimator needs must be given; each pair is both-or-neither.
    """

    slate_id: np.ndarray
    reward: np.ndarray
    pscore_slate: np.ndarray | None = None
    target_pscore_slate: np.ndarray | None = None
    pscore_item_position: np.ndarray | None = None
    target_pscore_item_position: np.ndarray | None = None
    pscore_cascade: np.ndarray | None = None
    target_pscore_cascade: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward = as_1d_float("reward", self.reward)
        n = reward.shape[0]
        if n == 0:
            raise ValueError("`reward` must not be empty: there is nothing to evaluate")
        slate_id = np.asarray(self.slate_id)
        if slate_id.shape != (n,):
            raise ValueError(f"`slate_id` must have shape ({n},) (got {slate_id.shape})")
        values: dict[str, Any] = {"reward": reward, "slate_id": slate_id}
        for kind in _KINDS:
            behavior, target = f"pscore_{kind}", f"target_pscore_{kind}"
            b, t = getattr(self, behavior), getattr(self, target)
            if (b is None) != (t is None):
                raise ValueError(f"`{behavior}` and `{target}` must be given together")
            if b is not None:
                values[behavior] = as_1d_float(behavior, b, n)
                check_propensity(behavior, values[behavior], allow_zero=False)
                values[target] = as_1d_float(target, t, n)
                check_propensity(target, values[target], allow_zero=True)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def weights(self, kind: str, estimator: str) -> np.ndarray:
        """Row weights ``target / behaviour`` for propensity ``kind``."""
        behavior = getattr(self, f"pscore_{kind}")
        if behavior is None:
            raise ValueError(
                f"{estimator} needs `pscore_{kind}` and `target_pscore_{kind}` in the batch"
            )
        return np.asarray(getattr(self, f"target_pscore_{kind}")) / behavior

    def per_slate_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` over the rows of each slate (slates in sorted-id order)."""
        _, inverse = np.unique(self.slate_id, return_inverse=True)
        return np.bincount(inverse, weights=values)

    def per_slate_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` over the rows of each slate."""
        _, inverse, counts = np.unique(self.slate_id, return_inverse=True, return_counts=True)
        return np.bincount(inverse, weights=values) / counts


@dataclass(frozen=True)
class _SlateIPS(BaseEstimator[SlateBatch]):
    kind: ClassVar[str]

    def importance_weights(self, batch: SlateBatch) -> np.ndarray:
        """Per-slate mean of the row weights (one value per slate, for the Kish ESS)."""
        return batch.per_slate_mean(batch.weights(self.kind, type(self).__name__))

    def terms(self, batch: SlateBatch) -> Terms:
        """``a_s = Σ_{rows i of slate s} w_i r_i``."""
        w = batch.weights(self.kind, type(self).__name__)
        return Terms(linear=batch.per_slate_sum(w * batch.reward))


@dataclass(frozen=True)
class SlateStandardIPS(_SlateIPS):
    """Standard slate IPS (SIPS): weight every position by the whole slate's ratio.

    ``V̂_SIPS = (1/|S|) Σ_s Σ_k [π_e(s) / π_b(s)] r_{s,k}``

    References
    ----------
    Li, S., Abbasi-Yadkori, Y., Kveton, B., Muthukrishnan, S., Vinay, V. and Wen, Z.
    (2018). Offline evaluation of ranking policies with click models. KDD.
    """

    kind: ClassVar[str] = "slate"
    name: ClassVar[str] = "sips"


@dataclass(frozen=True)
class SlateIndependentIPS(_SlateIPS):
    """Independent IPS (IIPS): item-position marginals, assuming no interaction.

    ``V̂_IIPS = (1/|S|) Σ_s Σ_k [π_e(a_{s,k} at k) / π_b(a_{s,k} at k)] r_{s,k}``

    References
    ----------
    Li, S. et al. (2018). Offline evaluation of ranking policies with click models. KDD.
    """

    kind: ClassVar[str] = "item_position"
    name: ClassVar[str] = "iips"


@dataclass(frozen=True)
class SlateRewardInteractionIPS(_SlateIPS):
    """Reward-interaction IPS (RIPS): top-k prefix ratios, for cascade behaviour.

    ``V̂_RIPS = (1/|S|) Σ_s Σ_k [π_e(a_{s,1:k}) / π_b(a_{s,1:k})] r_{s,k}``

    References
    ----------
    McInerney, J. et al. (2020). Counterfactual evaluation of slate recommendations with
    sequential reward interactions. KDD. Kiyohara, H. et al. (2022). Doubly robust
    off-policy evaluation for ranking policies under the cascade behavior model. WSDM.
    """

    kind: ClassVar[str] = "cascade"
    name: ClassVar[str] = "rips"
