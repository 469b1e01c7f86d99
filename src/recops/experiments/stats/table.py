"""The per-unit table that the analysis reads, checked with messages naming row and column.

Columns: ``unit_id``, ``variant``, one numeric column per metric component, optional
``pre_<column>`` for CUPED, optional ``timestamp`` (unix seconds of the unit's first
exposure); one row per unit, in arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

UNIT_ID = "unit_id"
VARIANT = "variant"
TIMESTAMP = "timestamp"


class UnitTableError(ValueError):
    """A problem in the per-unit table, at a row (0-based position) and/or a column.

    Parameters
    ----------
    message:
        What is wrong and what to fix.
    row:
        0-based position of the offending row, when one row is at fault.
    column:
        The offending column, when one column is at fault.
    """

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(
        values.to_numpy(dtype=np.float64, na_value=np.nan)
    )
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = raw.iloc[row]
        what = "is empty" if pd.isna(value) else f"is not a finite number ({value!r})"
        raise UnitTableError(
            f"column {column!r} {what}; every unit needs a numeric value", row=row, column=column
        )
    return values.to_numpy(dtype=np.float64)


def check_unit_table(
    frame: pd.DataFrame, control: str, columns: Sequence[str], optional: Sequence[str] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Validate the per-unit table and return ``(variant, {column: float64 values})``.

    Parameters
    ----------
    frame:
        The per-unit table.
    control:
        The control variant's name; it must occur in ``variant``.
    columns:
        Numeric columns the analysis needs (metric components).
    optional:
        Numeric columns read when present (``pre_*``, ``timestamp``).

    Raises
    ------
    UnitTableError
        Naming the column (and row) at fault: a missing column, a non-numeric or empty
        value, a unit listed twice, an unknown control, or no treatment variant.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame (got {type(frame).__name__})")
    required = [UNIT_ID, VARIANT, *columns]
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise UnitTableError(
            f"missing column(s) {missing}; the table has {list(map(str, frame.columns))}",
            column=missing[0],
        )
    variant_col = frame[VARIANT]
    empty = variant_col.isna().to_numpy()
    if empty.any():
        raise UnitTableError(
            "column 'variant' is empty; every unit needs its variant",
            row=int(np.flatnonzero(empty)[0]),
            column=VARIANT,
        )
    variant = variant_col.astype(str).to_numpy()
    units = frame[UNIT_ID].astype(str)
    duplicated = units.duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise UnitTableError(
            f"unit {units.iloc[row]!r} appears twice; the table needs one row per unit",
            row=row,
            column=UNIT_ID,
        )
    names = list(dict.fromkeys(variant))
    if control not in names:
        raise UnitTableError(
            f"control variant {control!r} is not in column 'variant' (found {names})",
            column=VARIANT,
        )
    if len(names) < 2:
        raise UnitTableError(
            f"column 'variant' holds only {control!r}; a test needs a treatment too",
            column=VARIANT,
        )
    wanted = list(dict.fromkeys([*columns, *(c for c in optional if c in frame.columns)]))
    return variant, {c: _numeric(frame, c) for c in wanted}
