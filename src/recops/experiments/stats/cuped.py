"""CUPED: variance reduction with each unit's pre-experiment metric.

The pre-period metric ``X`` cannot be moved by the treatment, but it predicts the
in-experiment metric ``Y``; subtracting its predictable part leaves the lift unbiased
and shrinks its variance by the share ``ρ²`` of variance that ``X`` explains:

``Ŷ_g = Ȳ_g − θ (X̄_g − X̄)``,  ``θ = cov(Y, X) / var(X)``

with ``θ`` estimated on the pooled units of both arms and ``X̄`` their pooled mean
(so ``Ŷ`` stays on the metric's scale). The adjusted arm's variance is the sample
variance of ``Y − θ X`` within the arm, and the lift is then tested exactly as
without CUPED.

For a ratio metric ``Σ x / Σ y`` with pre-period ratio ``Σ x' / Σ y'`` both are
replaced by their delta-method linearisations (see
:mod:`~recops.experiments.stats.summary`), ``ψ_i = (x_i − R y_i) / ȳ`` and
``φ_i = (x'_i − R' y'_i) / ȳ'``: ``R̂_g = R_g − θ (R'_g − R')`` with
``θ = cov(ψ, φ) / var(φ)`` on the pooled units and variance ``var_g(ψ − θ φ)``
(Deng et al. 2013, appendix B). Units without pre-period traffic contribute
``φ_i = 0`` and are simply not helped.

The reported variance reduction is ``1 − Var(Δ̂_CUPED) / Var(Δ̂)``.

References
----------
Deng, A., Xu, Y., Kohavi, R. and Walker, T. (2013). Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data. WSDM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.experiments.stats._validation import as_values
from recops.experiments.stats.summary import ArmSummary


@dataclass(frozen=True)
class CupedArm:
    """One arm's per-unit columns for CUPED.

    Parameters
    ----------
    post:
        The in-experiment metric (the numerator of a ratio metric).
    pre:
        Its pre-period value (the numerator of the pre-period ratio).
    post_den, pre_den:
        Denominators of a ratio metric and of its pre-period ratio (both or neither).
    """

    post: np.ndarray
    pre: np.ndarray
    post_den: np.ndarray | None = None
    pre_den: np.ndarray | None = None

    def __post_init__(self) -> None:
        post = as_values("post", self.post)
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "pre", as_values("pre", self.pre, n=post.size))
        if (self.post_den is None) != (self.pre_den is None):
            raise ValueError("`post_den` and `pre_den` must be given together (a ratio metric)")
        if self.post_den is not None:
            object.__setattr__(self, "post_den", as_values("post_den", self.post_den, n=post.size))
            object.__setattr__(self, "pre_den", as_values("pre_den", self.pre_den, n=post.size))

    @property
    def n(self) -> int:
        """Number of units."""
        return int(self.post.size)


@dataclass(frozen=True)
class CupedAdjustment:
    """The two CUPED-adjusted arms.

    Parameters
    ----------
    control, treatment:
        Adjusted arms, to test like unadjusted ones.
    theta:
        The regression coefficient ``θ``.
    variance_reduction:
        ``1 − Var(Δ̂_CUPED) / Var(Δ̂)`` (0.3 = the lift's variance shrank by 30%,
        worth 1 / 0.7 ≈ 1.4 times the units).
    """

    control: ArmSummary
    treatment: ArmSummary
    theta: float
    variance_reduction: float


def _influence(num: np.ndarray, den: np.ndarray | None) -> tuple[float, np.ndarray]:
    """The estimate (mean, or ratio of sums) and its per-unit influence values."""
    if den is None:
        mean = float(np.mean(num))
        return mean, num - mean
    mean_den = float(np.mean(den))
    if mean_den == 0:
        return float("nan"), np.full(num.shape, np.nan)
    ratio = float(np.mean(num)) / mean_den
    return ratio, (num - ratio * den) / mean_den


def _concat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return None if a is None or b is None else np.concatenate([a, b])


def cuped(control: CupedArm, treatment: CupedArm) -> CupedAdjustment:
    """CUPED-adjust both arms with a pooled ``θ`` (module docstring).

    Parameters
    ----------
    control, treatment:
        Per-unit post and pre columns of each arm (both arms of the same kind).

    Returns
    -------
    CupedAdjustment
        ``θ = 0`` (no adjustment) when the pre-period metric has no variance or is
        undefined (e.g. no pre-period impressions at all).
    """
    if (control.post_den is None) != (treatment.post_den is None):
        raise ValueError("`control` and `treatment` must both be mean or both be ratio metrics")
    if control.n < 2 or treatment.n < 2:
        raise ValueError(
            f"CUPED needs at least 2 units per arm (got {control.n} and {treatment.n})"
        )
    _, psi_pool = _influence(
        np.concatenate([control.post, treatment.post]),
        _concat(control.post_den, treatment.post_den),
    )
    pre_pool, phi_pool = _influence(
        np.concatenate([control.pre, treatment.pre]),
        _concat(control.pre_den, treatment.pre_den),
    )
    denominator = float(np.dot(phi_pool, phi_pool))
    theta = float(np.dot(psi_pool, phi_pool)) / denominator if denominator > 0 else 0.0
    if not np.isfinite(theta):
        theta = 0.0
    arms, raw_var, adj_var = [], 0.0, 0.0
    for arm in (control, treatment):
        post, psi = _influence(arm.post, arm.post_den)
        pre, phi = _influence(arm.pre, arm.pre_den)
        if theta == 0.0:
            adjusted, residual = post, psi
        else:
            adjusted, residual = post - theta * (pre - pre_pool), psi - theta * phi
        variance = float(np.var(residual, ddof=1))
        arms.append(ArmSummary(n=arm.n, mean=adjusted, variance=variance))
        raw_var += float(np.var(psi, ddof=1)) / arm.n
        adj_var += variance / arm.n
    reduction = 1.0 - adj_var / raw_var if raw_var > 0 else 0.0
    return CupedAdjustment(arms[0], arms[1], theta=theta, variance_reduction=reduction)
