"""The samples behind ``evidently_vectors.json``, rebuilt bit for bit from seeds.

Shared by ``make_evidently_vectors.py`` (run in a throw-away environment with Evidently)
and the tests, so their values need not be stored. Uniform doubles of NumPy's PCG64
are stable across releases.
"""

from __future__ import annotations

import numpy as np

#: name -> (seed, n_reference, n_current, reference transform, current transform) of
#: uniforms ``u``. Bounded samples: every Sturges bin of Evidently's PSI holds values of
#: both windows, so its rule for empty bins (a share of min/1e6 below 1e-4) never applies.
NUMERIC_CASES = {
    "uniform_shift": (1, 12_000, 15_000, "u", "0.02 + 1.03 u"),
    "uniform_same": (2, 11_000, 10_500, "u", "u"),
    "power_skew": (3, 20_000, 12_000, "u", "u ** 1.3"),
}
#: name -> (seed, n_reference, n_current, reference shares, current shares) over a..g
_SAME = (0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0)
CATEGORICAL_CASES = {
    "mix_with_new_category": (
        4,
        5_000,
        4_000,
        (0.3, 0.25, 0.2, 0.15, 0.1, 0.0, 0.0),
        (0.25, 0.25, 0.2, 0.1, 0.1, 0.0, 0.1),
    ),
    "mix_same": (5, 6_000, 3_000, _SAME, _SAME),
    "mix_lost_category": (
        6,
        2_500,
        2_000,
        (0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.0),
        (0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0),
    ),
}
LABELS = np.array(list("abcdefg"), dtype=object)


def numeric_samples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference and current samples of a numeric case."""
    seed, n_ref, n_cur, _, _ = NUMERIC_CASES[name]
    rng = np.random.default_rng(seed)
    ref, cur = rng.random(n_ref), rng.random(n_cur)
    if name == "uniform_shift":
        cur = 0.02 + 1.03 * cur
    elif name == "power_skew":
        cur = cur**1.3
    return ref, cur


def categorical_samples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference and current samples of a categorical case (labels ``a``..``g``)."""
    seed, n_ref, n_cur, p_ref, p_cur = CATEGORICAL_CASES[name]
    rng = np.random.default_rng(seed)

    def draw(n: int, shares: tuple[float, ...]) -> np.ndarray:
        cuts = np.cumsum(shares)
        return LABELS[np.searchsorted(cuts / cuts[-1], rng.random(n), side="right")]

    return draw(n_ref, p_ref), draw(n_cur, p_cur)
