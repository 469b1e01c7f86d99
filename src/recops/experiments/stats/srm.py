"""Sample-ratio mismatch: are the units split across variants as configured?

Pearson's χ² goodness-of-fit test of the observed unit counts ``o_k`` against the
configured weights ``w_k``: with ``N = Σ o_k`` and ``e_k = N w_k / Σ w``,

``χ² = Σ_k (o_k − e_k)² / e_k``, referred to ``χ²_{K−1}``.

A mismatch (by default ``p < 0.001``, a strict threshold because the test runs on every
read of every experiment) means the assignment or the logging is broken — e.g. a
variant that crashes drops its users, or a bot filter hits one arm — and the lift is
then not a causal estimate: do not read it.

References
----------
Fabijan, A. et al. (2019). Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments: A Taxonomy and Rules of Thumb for Practitioners. KDD. Kohavi, R., Tang, D.
and Xu, Y. (2020). Trustworthy Online Controlled Experiments, ch. 21.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from recops.experiments.stats._validation import check_probability

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SampleRatioTest:
    """Result of the SRM test.

    Parameters
    ----------
    counts:
        Observed units per variant.
    expected:
        Expected units per variant under the configured weights.
    statistic:
        Pearson's χ².
    dof:
        Degrees of freedom (variants − 1).
    p_value:
        ``P(χ²_dof ≥ statistic)``.
    threshold:
        Mismatch when ``p_value < threshold``.
    """

    counts: dict[str, int]
    expected: dict[str, float]
    statistic: float
    dof: int
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        """True when the split is significantly off the configured weights."""
        return bool(self.p_value < self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Keys ``counts``, ``expected``, ``statistic``, ``dof``, ``p_value``, ``threshold``,
        ``mismatch``."""
        return {
            "counts": dict(self.counts),
            "expected": dict(self.expected),
            "statistic": self.statistic,
            "dof": self.dof,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "mismatch": self.mismatch,
        }


def sample_ratio_test(
    counts: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> SampleRatioTest:
    """Pearson's χ² test of ``counts`` against ``weights`` (equal weights when None).

    Parameters
    ----------
    counts:
        Units per variant (variants with weight but no unit count as 0).
    weights:
        Relative allocation per variant (normalised here); every variant of ``counts``
        must have a positive weight.
    threshold:
        p-value below which the split is a mismatch.

    Returns
    -------
    SampleRatioTest
    """
    threshold = check_probability("threshold", threshold)
    if weights is None:
        weights = {name: 1.0 for name in counts}
    unknown = sorted(set(counts) - set(weights))
    if unknown:
        raise ValueError(
            f"`weights` has no weight for variant(s) {unknown} found in the data "
            f"(weights given for {sorted(weights)})"
        )
    names = list(weights)
    w = np.array([weights[k] for k in names], dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"`weights` must be positive numbers (got {dict(weights)})")
    if len(names) < 2:
        raise ValueError(f"the SRM test needs at least two variants (got {names})")
    observed = np.array([int(counts.get(k, 0)) for k in names], dtype=np.float64)
    if observed.sum() == 0:
        raise ValueError("`counts` must hold at least one unit")
    expected = observed.sum() * w / w.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(names) - 1
    return SampleRatioTest(
        counts={k: int(o) for k, o in zip(names, observed, strict=True)},
        expected={k: float(e) for k, e in zip(names, expected, strict=True)},
        statistic=statistic,
        dof=dof,
        p_value=float(stats.chi2.sf(statistic, dof)),
        threshold=threshold,
    )
