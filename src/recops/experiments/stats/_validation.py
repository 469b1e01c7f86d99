"""Argument checks shared by the statistics; every message names the argument at fault."""

from __future__ import annotations

import numpy as np

from recops.ope._validation import check_alpha

__all__ = ["as_values", "check_alpha", "check_probability"]


def as_values(name: str, values: object, n: int | None = None) -> np.ndarray:
    """Return ``values`` as a finite 1-d float64 array (of length ``n`` when given)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must hold numbers ({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-d array (got shape {arr.shape})")
    if n is not None and arr.size != n:
        raise ValueError(f"`{name}` must have length {n} (got {arr.size})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"`{name}` must be finite (got {float(arr[bad])!r} at index {bad})")
    return arr


def check_probability(name: str, value: object) -> float:
    """Return ``value`` if it is a number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"`{name}` must be a number in (0, 1) (got {value!r})")
    return float(value)
