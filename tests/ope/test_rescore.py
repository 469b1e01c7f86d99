"""Scores of logged candidates, as of each request (causal histories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.base import Queries, Recommender
from recops.ope.rescore import CausalHistories, candidate_support, score_candidates


class HistoryLength(Recommender):
    """Scores item j as 10 × (events in the history) + j: easy to check by hand."""

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> HistoryLength:
        self.item_ids_ = np.array(["a", "b", "c", "d"], dtype=object)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        lengths = np.array([len(h) for h in queries.histories], dtype=np.float64)
        return 10 * lengths[:, None] + np.arange(4)[None, :]


EVENTS = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2"],
        "item_id": ["a", "b", "c", "a"],
        "timestamp": [10, 20, 30, 5],
    }
)


def test_histories_hold_only_events_before_the_request() -> None:
    queries = CausalHistories(EVENTS).queries(["u1", "u1", "u2", "new"], np.array([20, 31, 5, 9]))
    assert [list(h) for h in queries.histories] == [["a"], ["a", "b", "c"], [], []]


def test_scores_of_candidates_with_unknown_items_below_all_known() -> None:
    model = HistoryLength().fit(EVENTS)
    scores = score_candidates(
        model,
        ["u1", "u1", "u2"],
        np.array([20, 31, 6]),
        [["d", "a"], ["b", "zzz"], ["c", "b"]],
        EVENTS,
        batch_size=2,
    )
    np.testing.assert_array_equal(scores, [[13, 10], [31, 29], [12, 11]])


def test_inputs_are_checked() -> None:
    model = HistoryLength().fit(EVENTS)
    with pytest.raises(ValueError, match="same number of candidates"):
        score_candidates(model, ["u1", "u2"], np.array([1, 2]), [["a"], ["a", "b"]], EVENTS)
    with pytest.raises(ValueError, match="one entry per request"):
        score_candidates(model, ["u1"], np.array([1, 2]), [["a"]], EVENTS)
    with pytest.raises(ValueError, match="lacks column"):
        CausalHistories(EVENTS.drop(columns="timestamp"))


def test_support_is_the_share_of_the_model_s_own_slate_in_the_candidates() -> None:
    model = HistoryLength().fit(EVENTS)
    # Both users have seen "a": the model's own top-2 is d, c for each.
    share = candidate_support(
        model, ["u1", "u2"], np.array([20, 6]), [["d", "c"], ["c", "b"]], EVENTS, k=2
    )
    assert share == pytest.approx(0.75)
    with pytest.raises(ValueError, match="positive int"):
        candidate_support(model, ["u1"], np.array([1]), [["a"]], EVENTS, k=0)
    with pytest.raises(ValueError, match="no requests"):
        candidate_support(model, [], np.array([], dtype=np.int64), [], EVENTS, k=2)
