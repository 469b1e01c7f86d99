"""Grid search on the validation split."""

from __future__ import annotations

import pandas as pd
import pytest

from recops.evaluation.splits import temporal_split, validation_split
from recops.evaluation.tuning import expand_grid, tune
from recops.models.baselines import ItemKNN, RecentPopular


def test_expand_grid() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand_grid({}) == [{}]
    assert expand_grid([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"a": []})
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"a": "abc"})


def test_tune_returns_the_best_row_first(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    best, table = tune(ItemKNN, {"n_neighbors": [1, 5, 20]}, split, "recall@10", progress=False)
    assert len(table) == 3
    assert table["recall@10"].is_monotonic_decreasing
    assert best == {"n_neighbors": int(table.loc[0, "n_neighbors"])}
    assert (table["fit_seconds"] >= 0).all()


def test_tune_uses_only_the_training_period(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    seen: list[int] = []

    class Spy(RecentPopular):
        def fit(self, events, items=None):  # type: ignore[no-untyped-def]
            seen.append(int(events["timestamp"].max()))
            return super().fit(events, items)

    tune(Spy, {"window_days": [1, 30]}, split, progress=False)
    val = validation_split(split)
    assert seen == [int(val.train["timestamp"].max())] * 2
    assert max(seen) < split.params["cutoff"]


def test_bad_metric(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    with pytest.raises(ValueError, match="`metric`"):
        tune(ItemKNN, {}, split, "precision@10", progress=False)
