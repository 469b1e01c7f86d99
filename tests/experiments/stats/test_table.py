"""The per-unit table's checks name the row and the column."""

from __future__ import annotations

import pandas as pd
import pytest

from recops.experiments.stats import UnitTableError, check_unit_table


def _frame(**overrides: list) -> pd.DataFrame:
    data = {
        "unit_id": ["u1", "u2", "u3", "u4"],
        "variant": ["control", "b", "control", "b"],
        "clicks": [1, 0, 2, 3],
        "impressions": [5, 4, 6, 7],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_returns_variants_and_float_columns() -> None:
    variant, columns = check_unit_table(
        _frame(), "control", ["clicks", "impressions"], optional=["pre_clicks"]
    )
    assert variant.tolist() == ["control", "b", "control", "b"]
    assert columns["clicks"].dtype == float and set(columns) == {"clicks", "impressions"}


@pytest.mark.parametrize(
    ("frame", "control", "row", "column", "message"),
    [
        (
            _frame().drop(columns="clicks"),
            "control",
            None,
            "clicks",
            r"missing column\(s\) \['clicks'\]",
        ),
        (_frame(clicks=[1, "x", 2, 3]), "control", 1, "clicks", r"not a finite number \('x'\)"),
        (_frame(clicks=[1, 0, None, 3]), "control", 2, "clicks", "is empty"),
        (_frame(unit_id=["u1", "u2", "u1", "u4"]), "control", 2, "unit_id", "appears twice"),
        (_frame(), "ctrl", None, "variant", "control variant 'ctrl' is not in column"),
        (_frame(variant=["control"] * 4), "control", None, "variant", "needs a treatment"),
        (_frame(variant=["control", None, "b", "b"]), "control", 1, "variant", "is empty"),
    ],
)
def test_errors_name_row_and_column(
    frame: pd.DataFrame, control: str, row: int | None, column: str, message: str
) -> None:
    with pytest.raises(UnitTableError, match=message) as info:
        check_unit_table(frame, control, ["clicks"])
    assert (info.value.row, info.value.column) == (row, column)


def test_frame_type_is_checked() -> None:
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        check_unit_table({"unit_id": []}, "control", [])  # type: ignore[arg-type]
