"""The exposure-log schema: round trips and located errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.ope.exposures import exposures_from_interactions, read_exposures, write_exposures


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": [100, 100, 200, 200],
            "unit": ["u1", "u1", "u2", "u2"],
            "position": [0, 1, 0, 1],
            "item_id": ["b", "a", "c", "b"],
            "propensity": [0.5, 0.25, 0.4, 0.3],
            "reward": [1.0, 0.0, 0.0, 1.0],
            "candidates": [["a", "b", "c"]] * 2 + [["b", "c", "d"]] * 2,
            "candidate_scores": [[0.1, 0.9, 0.3]] * 2 + [[0.2, 0.5, 0.1]] * 2,
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_exposures(_frame(), tmp_path / f"exposures{suffix}")
    log = read_exposures(path)
    fb = log.feedback
    assert fb.action_ids is not None
    assert list(fb.action_ids) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(fb.action, [1, 0, 2, 1])
    np.testing.assert_array_equal(fb.position, [0, 1, 0, 1])
    np.testing.assert_allclose(fb.pscore, [0.5, 0.25, 0.4, 0.3])
    assert fb.slate_id is not None
    assert fb.slate_id[0] == fb.slate_id[1] != fb.slate_id[2]
    assert log.candidates is not None and log.candidate_scores is not None
    np.testing.assert_array_equal(log.candidates[0], [0, 1, 2])
    np.testing.assert_allclose(log.candidate_scores[1], [0.2, 0.5, 0.1])


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[2, "propensity"] = 0.0
    path = write_exposures(frame, tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"bad.csv, line 4, field 'propensity': expected a prob"):
        read_exposures(path)
    frame = _frame().drop(columns=["reward"])
    frame.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match=r"short\.csv: missing column.*reward"):
        read_exposures(tmp_path / "short.csv")
    frame = _frame()
    frame["position"] = frame["position"].astype(object)
    frame.loc[1, "position"] = "top"
    frame.to_csv(tmp_path / "pos.csv", index=False)
    with pytest.raises(ValueError, match=r"pos.csv, line 3, field 'position': expected a number"):
        read_exposures(tmp_path / "pos.csv")
    text = tmp_path / "log.txt"
    text.write_text("x")
    with pytest.raises(ValueError, match=r"must be \.parquet, \.csv or \.jsonl"):
        read_exposures(text)


def test_unknown_items_are_reported(tmp_path: Path) -> None:
    path = write_exposures(_frame(), tmp_path / "e.parquet")
    with pytest.raises(ValueError, match=r"row 2, field 'item_id': item 'c' is not in"):
        read_exposures(path, action_ids=np.array(["a", "b"]))


def test_exposures_from_the_interaction_schema(tmp_path: Path) -> None:
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "item_id": ["a", "b", "b", "a", "c"],
            "event": ["impression", "impression", "click", "impression", "click"],
            "value": [1.0] * 5,
            "timestamp": [10, 10, 15, 20, 25],
            "position": [0, 1, None, 0, None],
            "propensity": [0.5, 0.25, None, 0.5, None],
            "request_id": ["r1", "r1", "r1", "r2", "r2"],
        }
    )
    exposures = exposures_from_interactions(events)
    assert exposures["reward"].tolist() == [0.0, 1.0, 0.0]  # u2's click was on 'c', not shown
    log = read_exposures(write_exposures(exposures, tmp_path / "e.parquet"))
    assert log.feedback.n_rows == 3
    with pytest.raises(ValueError, match="lacks position, propensity or request_id"):
        exposures_from_interactions(events.assign(propensity=None))
    with pytest.raises(ValueError, match="missing column"):
        exposures_from_interactions(events.drop(columns=["request_id"]))
