"""Validation of constructor parameters, with messages that say what was expected."""

from __future__ import annotations

import math

import numpy as np


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an int in ``low..high``, else raise ValueError."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if ok and int(value) >= low and (high is None or int(value) <= high):  # type: ignore[call-overload]
        return int(value)  # type: ignore[call-overload]
    bound = f"{low}..{high}" if high is not None else f">= {low}"
    raise ValueError(f"`{name}` must be an int {bound} (got {value!r})")


def check_float(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite number in the range, else raise."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        above = v >= low if low_inclusive else v > low
        if above and v <= high and math.isfinite(v):
            return v
    left = "[" if low_inclusive else "("
    raise ValueError(f"`{name}` must be a number in {left}{low}, {high}] (got {value!r})")


def check_optional_float(name: str, value: object, low: float) -> float | None:
    """Like :func:`check_float` with an open lower bound, but ``None`` is allowed."""
    return None if value is None else check_float(name, value, low, low_inclusive=False)
