"""Impression ranking (the MIND protocol): metrics against scipy and the definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from recops.evaluation.impressions import (
    METRICS,
    evaluate_impressions,
    impression_metrics,
    impression_split,
)
from recops.models.base import Queries, Recommender


@pytest.mark.parametrize("seed", range(20))
def test_metrics_equal_scipy_and_the_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    labels = (rng.random(n) < 0.2).astype(float)
    labels[rng.integers(n)] = 1.0
    if labels.all():
        labels[0] = 0.0
    scores = rng.normal(size=n)
    if seed % 2:
        scores = np.round(scores, 1)  # ties: AUC counts them half, as Mann-Whitney's U
    got = impression_metrics(labels, scores)
    pos, neg = scores[labels > 0], scores[labels == 0]
    u = mannwhitneyu(pos, neg).statistic
    assert got["auc"] == pytest.approx(u / (len(pos) * len(neg)))
    ranked = labels[np.argsort(-scores, kind="stable")]  # ties in the order given
    assert got["mrr"] == pytest.approx(sum(y / r for r, y in enumerate(ranked, 1)) / labels.sum())
    for k in (5, 10):
        dcg = sum(y / np.log2(r + 1) for r, y in enumerate(ranked[:k], 1))
        ideal = sum(1 / np.log2(r + 1) for r in range(1, min(k, int(labels.sum())) + 1))
        assert got[f"ndcg@{k}"] == pytest.approx(dcg / ideal)


def test_a_perfect_ranking_scores_one_and_the_reverse_zero_auc() -> None:
    labels = np.array([0, 1, 0, 0, 1.0])
    best = impression_metrics(labels, labels)
    # MIND's MRR averages 1/rank over the clicks: two clicks on top give (1 + 1/2) / 2.
    assert best == pytest.approx({**dict.fromkeys(METRICS, 1.0), "mrr": 0.75})
    worst = impression_metrics(labels, -labels)
    assert worst["auc"] == 0.0 and worst["mrr"] == pytest.approx((1 / 4 + 1 / 5) / 2)


def test_undefined_metrics_are_nan_and_bad_shapes_are_refused() -> None:
    every = impression_metrics(np.ones(3), np.arange(3.0))
    assert np.isnan(every["auc"]) and every["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert all(np.isnan(v) for v in impression_metrics(np.zeros(3), np.arange(3.0)).values())
    with pytest.raises(ValueError, match="equal-length"):
        impression_metrics(np.ones(3), np.ones(2))


def _events() -> pd.DataFrame:
    """Three users; a clicks a1, b clicks b1 before the cutoff; two impressions after."""
    rows = [
        ("a", "a1", "click", 1.0, 10, ""),
        ("b", "b1", "click", 1.0, 11, ""),
        ("a", "a1", "impression", 1.0, 20, "i1"),
        ("a", "b1", "impression", 0.0, 20, "i1"),
        ("a", "a1", "click", 1.0, 20, "i1"),
        ("b", "b1", "impression", 1.0, 30, "i2"),
        ("b", "a1", "impression", 0.0, 30, "i2"),
        ("b", "new", "impression", 0.0, 30, "i2"),
        ("b", "b1", "click", 1.0, 30, "i2"),
        ("c", "a1", "impression", 0.0, 40, "i3"),
        ("c", "b1", "impression", 1.0, 40, "i3"),
        ("c", "b1", "click", 1.0, 40, "i3"),
    ]
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "event", "value", "timestamp", "impression_id"]
    )


def test_the_split_trains_before_the_cutoff_and_ranks_the_rest() -> None:
    split = impression_split(_events(), quantile=0.5)
    assert split.cutoff == 30
    assert set(split.test["impression_id"]) == {"i2", "i3"}
    assert split.train["timestamp"].max() < 30
    assert len(split.train_impressions) == 2 and set(split.train_clicks["item_id"]) == {"a1", "b1"}
    with pytest.raises(ValueError, match="quantile"):
        impression_split(_events(), quantile=1.0)
    with pytest.raises(ValueError, match="no `impression` rows"):
        impression_split(_events()[lambda e: e["event"] == "click"])


class _OwnHistory(Recommender):
    """Scores each known item by whether it is in the query's history (a test double)."""

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> _OwnHistory:
        self.item_ids_ = np.array(sorted(set(interactions["item_id"])), dtype=object)
        self.seen: list[Queries] = []
        return self

    def score(self, queries: Queries) -> np.ndarray:
        self.seen.append(queries)
        return np.array([[float(i in set(h)) for i in self.item_ids_] for h in queries.histories])


def test_each_impression_is_ranked_from_the_clicks_before_it() -> None:
    split = impression_split(_events(), quantile=0.5)
    model = _OwnHistory().fit(split.train_clicks)
    result = evaluate_impressions(model, split, n_boot=50)
    (queries,) = model.seen
    assert list(queries.user_ids) == ["b", "c"] and list(queries.now) == [30, 40]
    assert [list(h) for h in queries.histories] == [["b1"], []]  # b's click at 30 is not before
    # i2: b1 (clicked, in b's history) first: perfect; "new" is unknown, ranked last.
    assert result.per_impression["auc"][0] == 1.0 and result.per_impression["mrr"][0] == 1.0
    # i3: c has no history: a1 and b1 tie, AUC counts the pair half.
    assert result.per_impression["auc"][1] == 0.5
    assert result.known_share == pytest.approx(4 / 5)
    assert result.summary()["auc"] == pytest.approx(0.75)
    assert result.to_dict()["impressions"] == 2


def test_a_shared_candidate_set_drops_other_items_and_unclicked_impressions() -> None:
    split = impression_split(_events(), quantile=0.5)
    model = _OwnHistory().fit(split.train_clicks)
    result = evaluate_impressions(model, split, candidates={"a1", "b1"}, n_boot=50)
    assert result.known_share == 1.0 and len(result.impression_ids) == 2
    only_a1 = evaluate_impressions(model, split, candidates={"a1"}, n_boot=50)
    assert len(only_a1.impression_ids) == 0  # a1 was clicked in neither test impression


def test_on_mind_recent_popularity_ranks_known_candidates_above_chance(
    shared_data: Path,
) -> None:
    from recops.data.loaders import load_dataset
    from recops.models.baselines import RecentPopular

    data = load_dataset("mind-small", data_dir=shared_data)
    split = impression_split(data.interactions)
    model = RecentPopular(window_days=1).fit(split.train_clicks)
    known = set(split.train_clicks["item_id"])
    everything = evaluate_impressions(model, split, n_boot=200)
    shared = evaluate_impressions(model, split, candidates=known, n_boot=200)
    # Most articles shown after the cutoff are new to a click model: it ranks them
    # at chance; among those it knows, yesterday's clicks say something.
    assert everything.known_share < 0.5
    assert len(shared.impression_ids) < len(everything.impression_ids)
    assert shared.interval("auc").low > 0.5
