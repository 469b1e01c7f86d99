"""evaluate(): batching, groups, coverage and agreement with the metric functions."""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import pandas as pd
import pytest

from recops.evaluation.protocol import evaluate, recommend_split, score_recommendations
from recops.evaluation.splits import Split, temporal_split
from recops.models.base import Queries, Recommender
from recops.models.baselines import ItemKNN, MostPopular


class FixedOrder(Recommender):
    """Ranks items in a fixed order (a > b > c > d > e); ``-inf`` for ``blocked``."""

    def __init__(self, blocked: tuple[str, ...] = ()) -> None:
        self.blocked = blocked

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        self.item_ids_ = np.array(list("abcde"), dtype=object)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        scores = np.tile(np.arange(5, 0, -1, dtype=float), (len(queries), 1))
        scores[:, np.isin(self.item_ids_, self.blocked)] = -np.inf
        return scores


def _split() -> Split:
    empty = np.array([], dtype=object)
    return Split(
        train=pd.DataFrame({"user_id": ["w"], "item_id": ["a"], "timestamp": [0]}),
        queries=Queries(
            ["w", "c1", "c2"],
            [np.array(["a"], dtype=object), empty, empty],
            [np.array([0]), np.array([], dtype=np.int64), np.array([], dtype=np.int64)],
            np.array([10, 10, 10]),
        ),
        targets=(
            np.array(["c"], dtype=object),
            np.array(["e", "b"], dtype=object),
            np.array(["a"], dtype=object),
        ),
        is_cold=np.array([False, True, True]),
        protocol="global_temporal",
        candidates=np.array(list("abcde"), dtype=object),
        known_since=np.zeros(5, dtype=np.int64),
    )


def test_metrics_by_hand() -> None:
    result = evaluate(FixedOrder().fit(pd.DataFrame()), _split(), ks=(2,), n_boot=50)
    # w: a is seen, list = b c -> hit at rank 2. c1: list a b -> hit at rank 2 (b).
    # c2: list a b -> hit at rank 1.
    np.testing.assert_allclose(result.per_user["recall@2"], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(result.per_user["mrr@2"], [0.5, 0.5, 1.0])
    idcg2 = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(
        result.per_user["ndcg@2"], [1 / math.log2(3), (1 / math.log2(3)) / idcg2, 1.0]
    )
    assert result.recommended[0].tolist() == ["b", "c"]
    assert result.mean("recall@2", "cold") == pytest.approx(0.75)
    assert result.n_users("warm") == 1
    assert result.coverage(2) == pytest.approx(3 / 5)
    assert result.coverage(2, "cold") == pytest.approx(2 / 5)


def test_empty_slots_are_none_and_count_as_misses() -> None:
    model = FixedOrder(blocked=("b", "c", "d", "e")).fit(pd.DataFrame())
    lists = recommend_split(model, _split(), 3)
    assert lists[0].tolist() == [None, None, None]  # a is seen, the rest blocked
    result = evaluate(model, _split(), ks=(3,), n_boot=50)
    assert result.per_user["hit_rate@3"].tolist() == [0.0, 0.0, 1.0]


def test_batches_do_not_change_the_result(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.6)
    model = ItemKNN(n_neighbors=10).fit(split.train)
    one = evaluate(model, split, batch_size=10_000, n_boot=50)
    many = evaluate(model, split, batch_size=3, n_boot=50)
    for name, values in one.per_user.items():
        np.testing.assert_array_equal(values, many.per_user[name])


def test_summary_and_json(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.6)
    result = evaluate(MostPopular().fit(split.train), split, ks=(5, 10), n_boot=100)
    summary = result.summary()
    names = ("recall", "ndcg", "hit_rate", "mrr")
    assert set(summary) == {f"{m}@{k}" for m in names for k in (5, 10)}
    for interval in summary.values():
        assert interval.low <= interval.mean <= interval.high
    out = result.to_dict()
    assert out["all"]["users"] == len(split)
    assert out["warm"]["users"] + out["cold"]["users"] == len(split)
    assert set(out["all"]["coverage"]) == {"coverage@5", "coverage@10"}


def test_bad_arguments(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.6)
    model = MostPopular().fit(split.train)
    with pytest.raises(ValueError, match="`k`"):
        evaluate(model, split, ks=(0,))
    with pytest.raises(ValueError, match="`batch_size`"):
        evaluate(model, split, batch_size=0)
    with pytest.raises(KeyError, match="unknown metric"):
        evaluate(model, split, n_boot=50).mean("precision@10")


class Knows(Recommender):
    """Ranks its own items in the given order (a fixed list, whatever the query)."""

    def __init__(self, order: str) -> None:
        self.order = order

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        self.item_ids_ = np.array(list(self.order), dtype=object)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        return np.tile(np.arange(len(self.order), 0, -1, dtype=float), (len(queries), 1))


def _news_split() -> Split:
    """Train: a, b before 100. Catalog: n published at 105, f at 500 (after every now)."""
    events = pd.DataFrame(
        {
            "user_id": ["w", "w", "x", "w", "c", "c", "c"],
            "item_id": ["a", "b", "a", "n", "b", "a", "n"],
            "timestamp": [10, 20, 30, 150, 110, 115, 120],
        }
    )
    items = pd.DataFrame(
        {"item_id": ["a", "b", "n", "f"], "publish_time": pd.Series([0, 0, 105, 500])}
    )
    return temporal_split(events, cutoff=100, n_cold_history=1, items=items)


def test_shared_candidates_and_slices_by_hand() -> None:
    split = _news_split()
    # w: warm, now 100, history a b, target n (new, published at 105: not yet known).
    # c: cold, now 110 (history b), targets a and n (n new and known from 105).
    assert list(split.queries.user_ids) == ["c", "w"]
    assert split.n_candidates == 3  # a, b, n are known at the latest now (110); f is not
    content = evaluate(Knows("fnab").fit(pd.DataFrame()), split, ks=(2,), n_boot=50)
    ids_only = evaluate(Knows("ab").fit(pd.DataFrame()), split, ks=(2,), n_boot=50)
    # f (published at 500) is never recommended; n only to c, whose now is after 105.
    assert content.recommended.tolist() == [["n", "a"], [None, None]]
    assert ids_only.recommended.tolist() == [["a", None], [None, None]]
    assert content.n_candidates == ids_only.n_candidates == 3
    assert content.n_users("new_items") == 2 and content.n_users("cold") == 1
    # New-item slice: c found n at rank 1; w could not (n unpublished at its now).
    np.testing.assert_allclose(content.values("recall@2", "new_items"), [1.0, 0.0])
    np.testing.assert_allclose(ids_only.values("recall@2", "new_items"), [0.0, 0.0])
    # All targets: c has a and n (both hit by the content model, one by ids only).
    np.testing.assert_allclose(content.values("recall@2", "cold"), [1.0])
    np.testing.assert_allclose(ids_only.values("recall@2", "cold"), [0.5])
    assert content.coverage(2) == pytest.approx(2 / 3)
    assert set(content.to_dict()) >= {"warm", "cold", "new_items"}


def test_exported_lists_score_like_evaluate() -> None:
    split = _news_split()
    model = Knows("fnab").fit(pd.DataFrame())
    direct = evaluate(model, split, ks=(2,), n_boot=50)
    # Lists as `recops recommend` writes them: unfiltered, with f and seen items in them.
    frame = pd.DataFrame(
        {
            "user_id": ["c"] * 4 + ["w"] * 4,
            "rank": [1, 2, 3, 4] * 2,
            "item_id": list("fnab") * 2,
        }
    )
    exported = score_recommendations(frame, split, ks=(2,), n_boot=50)
    assert exported.recommended.tolist() == direct.recommended.tolist()
    for metric, values in direct.per_user.items():
        np.testing.assert_array_equal(values, exported.per_user[metric])
    with pytest.raises(ValueError, match="lack column"):
        score_recommendations(frame.drop(columns="rank"), split)
