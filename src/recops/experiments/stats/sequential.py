"""Always-valid inference: an asymptotic confidence sequence and its always-valid p-value.

A fixed-horizon interval covers the truth at *one* pre-planned sample size; read it
after every new batch of users and stop at the first significant result, and the
false-positive rate climbs far above ``α``. A confidence sequence ``(C_N)`` covers the
truth at *every* ``N`` simultaneously with probability ``1 − α``, so the result may be
read (and the experiment stopped) at any time.

We use the asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9), as
GrowthBook does, applied to the lift estimate ``Δ`` with variance ``Var(Δ)`` (see
:mod:`~recops.experiments.stats.fixed`). With ``N = n_a + n_b`` units and
``σ̂² = N · Var(Δ)``:

``C_N = Δ ± σ̂ · sqrt( 2 (N ρ² + 1) / (N² ρ²) · log( sqrt(N ρ² + 1) / α ) )``

The always-valid p-value is the inverse of the normal-mixture e-value
(Waudby-Smith et al. 2023, eq. 155),

``p_N = min(1, sqrt(N ρ² + 1) · exp(−ρ² S / (2 (N ρ² + 1))))`` with ``S = N Δ² / Var(Δ)``

(``S = (Σ_i ψ_i)² / σ̂²`` in the paper's notation): ``p_N < α`` exactly when 0 is
outside ``C_N``. Rejecting at the first look with ``p_N < α`` keeps the false-positive rate
at most ``α`` however often one looks (asymptotically in the number of units).

The tuning parameter ``τ`` (``tuning``) is the total sample size at which the
sequence is narrowest: ``ρ² = (−2 log α + log(1 − 2 log α)) / τ`` (eq. 161). Set it
near the number of units the experiment expects; the interval is wider than the
fixed-horizon one everywhere (that is the price of peeking), least so near ``τ``.
Its default, 5,000, is GrowthBook's.

References
----------
Waudby-Smith, I., Arbour, D., Sinha, R., Kennedy, E. H. and Ramdas, A. (2023).
Time-uniform central limit theory and asymptotic confidence sequences.
arXiv:2103.06476 (v7). Howard, S. R., Ramdas, A., McAuliffe, J. and Sekhon, J.
(2021). Time-uniform, nonparametric, nonasymptotic confidence sequences. Annals of
Statistics 49(2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recops.experiments.stats._validation import check_alpha
from recops.experiments.stats.fixed import Lift, lift_variances
from recops.experiments.stats.summary import ArmSummary
from recops.ope._validation import check_positive_float

DEFAULT_TUNING = 5_000.0


def mixture_rho2(alpha: float, tuning: float) -> float:
    """``ρ² = (−2 log α + log(1 − 2 log α)) / τ``: the mixture's precision (eq. 161)."""
    log_alpha = float(np.log(alpha))
    return (-2.0 * log_alpha + float(np.log(1.0 - 2.0 * log_alpha))) / tuning


def confidence_sequence_arrays(
    n_total: Any, estimate: Any, variance: Any, alpha: float, tuning: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised ``(cs_low, cs_high, p_value)`` of the module docstring's formulas."""
    n = np.asarray(n_total, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    rho2 = mixture_rho2(alpha, tuning)
    scale = n * rho2 + 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        half = np.sqrt(variance * n) * np.sqrt(
            2.0 * scale * np.log(np.sqrt(scale) / alpha) / (n**2 * rho2)
        )
        s2 = est**2 * n / variance
        # 1 / e-value, computed in logs so that huge e-values do not overflow.
        log_p = 0.5 * np.log(scale) - rho2 * s2 / (2.0 * scale)
        p = np.minimum(1.0, np.exp(np.minimum(log_p, 0.0)))
    p = np.where(np.isnan(log_p), np.nan, p)
    return est - half, est + half, p


@dataclass(frozen=True)
class SequentialTest:
    """Always-valid results for one treatment against control.

    Parameters
    ----------
    absolute, relative:
        The lifts; ``ci_low``/``ci_high`` bound the confidence sequence at the current
        sample size and ``p_value`` is the always-valid p-value. ``std_error`` is the
        fixed-horizon one (the sequence is wider by a factor that depends on ``N``).
    n_total:
        Units in both arms.
    tuning:
        ``τ``, the sample size at which the sequence is narrowest.
    alpha:
        Error level of the sequence.
    """

    absolute: Lift
    relative: Lift
    n_total: int
    tuning: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """``absolute``, ``relative`` (each :meth:`Lift.to_dict`), ``n_total`` and ``tuning``."""
        return {
            "absolute": self.absolute.to_dict(),
            "relative": self.relative.to_dict(),
            "n_total": self.n_total,
            "tuning": self.tuning,
        }


def sequential_test(
    control: ArmSummary,
    treatment: ArmSummary,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> SequentialTest:
    """The asymptotic confidence sequence and always-valid p-value at the current sample size.

    Parameters
    ----------
    control, treatment:
        The two arms (see :class:`~recops.experiments.stats.summary.ArmSummary`).
    alpha:
        The sequence covers the lift at every sample size with probability ``1 − alpha``.
    tuning:
        ``τ > 0``: the total sample size at which the sequence is narrowest.

    Returns
    -------
    SequentialTest
    """
    alpha = check_alpha(alpha)
    tuning = check_positive_float("tuning", tuning, allow_inf=False)
    n_total = control.n + treatment.n
    absolute, var_abs, relative, var_rel, _ = lift_variances(
        control.n, control.mean, control.variance, treatment.n, treatment.mean, treatment.variance
    )
    lifts = []
    for estimate, variance in ((absolute, var_abs), (relative, var_rel)):
        low, high, p = confidence_sequence_arrays(n_total, estimate, variance, alpha, tuning)
        lifts.append(
            Lift(float(estimate), float(low), float(high), float(np.sqrt(variance)), float(p))
        )
    return SequentialTest(lifts[0], lifts[1], n_total=n_total, tuning=tuning, alpha=alpha)
