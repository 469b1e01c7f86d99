"""Multiple-testing adjustments across variants × metrics.

With ``m`` p-values sorted ``p_(1) ≤ … ≤ p_(m)``:

* **Holm** (step-down, controls the family-wise error rate):
  ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``.
* **Benjamini–Hochberg** (step-up, controls the false discovery rate under independence
  or positive dependence): ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``.

Both return adjusted p-values in the input order; compare them with ``α``. ``nan``
inputs (an undefined test) stay ``nan`` and do not count towards ``m``.

References
----------
Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
Journal of Statistics 6(2). Benjamini, Y. and Hochberg, Y. (1995). Controlling the false
discovery rate. JRSS B 57(1).
"""

from __future__ import annotations

import numpy as np


def _prepare(p_values: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"`p_values` must be a 1-d array (got shape {p.shape})")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        bad = float(p[finite][(p[finite] < 0) | (p[finite] > 1)][0])
        raise ValueError(f"`p_values` must be in [0, 1] (got {bad!r})")
    idx = np.flatnonzero(finite)
    order = idx[np.argsort(p[idx], kind="stable")]
    return p, order, np.full(p.shape, np.nan)


def holm(p_values: object) -> np.ndarray:
    """Holm's step-down adjusted p-values (module docstring)."""
    p, order, out = _prepare(p_values)
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def benjamini_hochberg(p_values: object) -> np.ndarray:
    """Benjamini–Hochberg step-up adjusted p-values (module docstring)."""
    p, order, out = _prepare(p_values)
    m = order.size
    scaled = m * p[order] / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out
