"""Server log tables → shown items, per-unit tables and the OBD layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.experiments.logs import EXPOSURE_COLUMNS, shown_items, team_credits, to_obd, unit_table


def _exposure(request_id: str, unit: str, t: int, items: list[str], **kw: object) -> dict:
    row = {
        "request_id": request_id,
        "timestamp": t,
        "unit": unit,
        "experiment": "exp",
        "variant": "a",
        "model": "news",
        "version": "1",
        "policy": {"kind": "greedy"},
        "items": items,
        "propensities": [1.0] * len(items),
        "scores": [float(-i) for i in range(len(items))],
        "candidates": None,
        "candidate_scores": None,
        "sources": None,
    }
    row.update(kw)
    return row


@pytest.fixture()
def log() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    exposures = pd.DataFrame(
        [
            _exposure("r0", "u1", 50, ["x", "y"], experiment=None, variant=None),  # pre-period
            _exposure("r1", "u1", 100, ["a", "b", "c"]),
            _exposure("r2", "u1", 110, ["d", "a"]),
            _exposure(
                "r3",
                "u2",
                120,
                ["c", "a"],
                variant="b",
                propensities=[0.5, 0.25],
                candidates=["a", "b", "c"],
                candidate_scores=[0.3, 0.2, 0.1],
            ),
            _exposure("r4", "u3", 130, ["a"], variant="holdout"),
        ],
        columns=EXPOSURE_COLUMNS,
    )
    responses = pd.DataFrame(
        [
            ("r1", "b", "click", 101),
            ("r1", "b", "click", 102),  # a double click counts once
            ("r2", "z", "click", 111),  # an item the slate did not show: no reward
            ("r3", "a", "click", 121),
            ("r0", "x", "click", 51),
            ("r1", "c", "impression", 101),
        ],
        columns=["request_id", "item_id", "event", "timestamp"],
    )
    assignments = pd.DataFrame(
        [("u1", "a", 100), ("u2", "b", 120), ("u3", "holdout", 130)],
        columns=["unit", "variant", "timestamp"],
    )
    return exposures, responses, assignments


def test_shown_items_one_row_per_position_with_joined_rewards(log: tuple) -> None:
    exposures, responses, _ = log
    shown = shown_items(exposures, responses)
    assert len(shown) == 10
    r1 = shown[shown["request_id"] == "r1"]
    assert r1["position"].tolist() == [0, 1, 2] and r1["item_id"].tolist() == ["a", "b", "c"]
    assert r1["reward"].tolist() == [0.0, 1.0, 0.0]
    r3 = shown[shown["request_id"] == "r3"]
    assert r3["reward"].tolist() == [0.0, 1.0] and r3["propensity"].tolist() == [0.5, 0.25]
    assert r3["candidates"].iloc[0] == ["a", "b", "c"]
    # Greedy slates chose from what they showed.
    assert shown[shown["request_id"] == "r2"]["candidates"].iloc[0] == ["d", "a"]


def test_unit_table_counts_from_assignment_on_with_a_pre_period(log: tuple) -> None:
    exposures, responses, assignments = log
    table = unit_table(shown_items(exposures, responses), assignments, "exp")
    assert table["unit_id"].tolist() == ["u1", "u2"]  # the held-out unit is left out
    u1 = table.iloc[0]
    assert (u1["requests"], u1["impressions"], u1["clicks"]) == (2, 5, 1)
    assert (u1["pre_requests"], u1["pre_impressions"], u1["pre_clicks"]) == (1, 2, 1)
    u2 = table.iloc[1]
    assert (u2["variant"], u2["impressions"], u2["clicks"], u2["pre_clicks"]) == ("b", 2, 1, 0)
    short = unit_table(shown_items(exposures, responses), assignments, "exp", pre_period_s=10)
    assert short["pre_impressions"].tolist() == [0.0, 0.0]


def test_obd_layout(log: tuple) -> None:
    exposures, responses, _ = log
    shown = shown_items(exposures, responses)
    obd, items = to_obd(shown)
    assert obd["position"].min() == 1 and obd["click"].sum() == 3
    assert np.array_equal(items["item_id"], np.arange(len(items)))
    named = items.set_index("item_id")["item_name"]
    assert named[obd["item_id"]].tolist() == shown["item_id"].tolist()


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="`exposures` lacks column"):
        shown_items(pd.DataFrame({"request_id": []}), pd.DataFrame())


def test_team_credits_per_unit() -> None:
    exposures = pd.DataFrame(
        [
            _exposure("r1", "u1", 1, ["a", "b"], sources=["A", "B"]),
            _exposure("r2", "u1", 2, ["c", "d"], sources=["B", "A"]),
            _exposure("r3", "u2", 3, ["a", "b"], sources=["A", "B"]),
        ],
        columns=EXPOSURE_COLUMNS,
    )
    responses = pd.DataFrame(
        [("r1", "b", "click", 1), ("r2", "d", "click", 2), ("r2", "c", "click", 2)],
        columns=["request_id", "item_id", "event", "timestamp"],
    )
    credits = team_credits(shown_items(exposures, responses), "exp")
    assert credits["unit_id"].tolist() == ["u1", "u2"]
    assert credits["A"].tolist() == [1, 0] and credits["B"].tolist() == [2, 0]
    with pytest.raises(ValueError, match="no interleaved slates"):
        team_credits(shown_items(exposures.assign(sources=None), responses), "exp")
