"""Input checks shared by the estimators; every message names the argument at fault."""

from __future__ import annotations

import numpy as np

# Rows of an action distribution must sum to one; float32 inputs and long sums of
# float64 softmaxes drift by ~1e-7, so the tolerance is loose enough for both.
ROW_SUM_ATOL = 1e-6


def as_1d_float(name: str, values: object, n: int | None = None) -> np.ndarray:
    """Return ``values`` as a finite 1-d float64 array, optionally of length ``n``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-d array (got shape {arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"`{name}` must have length {n} like `reward` (got {arr.shape[0]})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"`{name}` must be finite (got {float(arr[bad])!r} at index {bad})")
    return arr


def as_1d_int(name: str, values: object, n: int, upper: int) -> np.ndarray:
    """Return ``values`` as a 1-d int64 array of length ``n`` with entries in 0..upper-1."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"`{name}` must be a 1-d array of length {n} (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise ValueError(f"`{name}` must hold integers (got dtype {arr.dtype})")
        arr = as_int
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        bad = int(np.flatnonzero((arr < 0) | (arr >= upper))[0])
        raise ValueError(f"`{name}` must be in 0..{upper - 1} (got {arr[bad]} at index {bad})")
    return arr


def check_propensity(name: str, values: np.ndarray, *, allow_zero: bool) -> None:
    """Raise unless every entry is in (0, 1] (or [0, 1] when ``allow_zero``)."""
    low_ok = values >= 0 if allow_zero else values > 0
    ok = low_ok & (values <= 1.0)
    if not np.all(ok):
        bad = int(np.flatnonzero(~ok)[0])
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(
            f"`{name}` must be in {interval} (got {float(values[bad])!r} at index {bad})"
        )


def check_action_dist(
    action_dist: object, n_rows: int, n_actions: int, len_list: int
) -> np.ndarray:
    """Validate a target policy's action distribution and return it as float64.

    Accepts shape ``(n_actions, len_list)`` (the same for every row) or
    ``(n_rows, n_actions, len_list)``; every (row, position) must sum to one over actions.
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    expected = f"({n_actions}, {len_list}) or ({n_rows}, {n_actions}, {len_list})"
    if dist.shape not in ((n_actions, len_list), (n_rows, n_actions, len_list)):
        raise ValueError(f"`action_dist` must have shape {expected} (got {dist.shape})")
    if not np.all(np.isfinite(dist)) or dist.min(initial=0.0) < 0:
        raise ValueError("`action_dist` must hold finite non-negative probabilities")
    sums = dist.sum(axis=-2)
    off = np.abs(sums - 1.0) > ROW_SUM_ATOL
    if np.any(off):
        where = np.argwhere(off)[0]
        raise ValueError(
            "`action_dist` must sum to 1 over actions for every row and position "
            f"(got {sums[tuple(where)]:.6g} at index {tuple(int(i) for i in where)})"
        )
    return dist


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` if it is a float in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be a float in (0, 1) (got {alpha!r})")
    return float(alpha)


def check_positive_int(name: str, value: object, low: int = 1) -> int:
    """Return ``value`` if it is an int >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < low:
        raise ValueError(f"`{name}` must be an int >= {low} (got {value!r})")
    return int(value)


def check_positive_float(name: str, value: object, *, allow_inf: bool = True) -> float:
    """Return ``value`` if it is a positive float (``inf`` allowed when ``allow_inf``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number (got {value!r})")
    if not allow_inf and not np.isfinite(value):
        raise ValueError(f"`{name}` must be a positive finite number (got {value!r})")
    return float(value)
