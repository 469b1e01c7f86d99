"""Argument checks of the monitoring statistics; every message names the argument at fault."""

from __future__ import annotations

import numpy as np

from recops.experiments.stats._validation import as_values

__all__ = ["as_labels", "as_values", "check_epsilon"]


def as_labels(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a 1-d array of category labels (``str``), refusing missing ones."""
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-d array of labels (got shape {arr.shape})")
    missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise ValueError(f"`{name}` must not hold missing labels (got one at index {missing[0]})")
    return np.asarray([str(v) for v in arr], dtype=object)


def check_epsilon(epsilon: object) -> float:
    """Return ``epsilon`` if it is a number in (0, 0.01]: a share standing in for zero."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 < epsilon <= 0.01:
        raise ValueError(f"`epsilon` must be a number in (0, 0.01] (got {epsilon!r})")
    return float(epsilon)
