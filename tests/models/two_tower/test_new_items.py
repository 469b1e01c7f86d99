"""Items the model has no trained id row for: content-only vectors, add_items, history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from tests.models.two_tower.conftest import HOUR, T0, in_mode


def _fresh() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a_fresh", "b_fresh", "a1"],  # a1 is known: left as it is
            "title": ["alpha sunny beach today", "beta rainy mountain today", "changed"],
            "categories": [["CatA"], ["CatB", "NewCategory"], ["CatB"]],
            "publish_time": pd.Series([T0 + 500 * HOUR, T0 + 501 * HOUR, None], dtype="Int64"),
        }
    )


def _content_only(model: TwoTower, rows: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model.net_.item(
            torch.zeros(len(rows), dtype=torch.long),
            model.net_.content(
                torch.from_numpy(model.catalog_.categories[rows]),
                torch.from_numpy(model.catalog_.tokens[rows]),
            ),
        ).numpy()


def _query(model: TwoTower, history: list[str], now: int) -> Queries:
    return Queries(
        ["someone"],
        [np.array(history, dtype=object)],
        [np.full(len(history), now - HOUR, dtype=np.int64)],
        np.array([now], dtype=np.int64),
    )


def test_catalog_only_items_get_their_content_only_vector(fitted: TwoTower) -> None:
    """Issue 11: items only in the catalog had an id row trained only as a negative."""
    rows = [fitted.item_index["a_new"], fitted.item_index["b_new"]]
    assert not fitted.net_.has_id[[r + 1 for r in rows]].any()
    np.testing.assert_allclose(fitted.item_vectors()[rows], _content_only(fitted, rows), atol=1e-6)
    trained = fitted.item_index["a1"]
    assert bool(fitted.net_.has_id[trained + 1])


def test_add_items_embeds_new_items_from_content(fitted: TwoTower) -> None:
    grown, rows = fitted.with_items(_fresh())
    n = len(fitted.item_ids_)
    assert rows.tolist() == [n, n + 1]
    assert len(fitted.item_ids_) == n and "a_fresh" not in fitted.item_index, "original unchanged"
    assert grown.item_ids_[rows].tolist() == ["a_fresh", "b_fresh"]
    assert grown.item_vectors().shape == (n + 2, fitted.dim)
    np.testing.assert_allclose(
        grown.item_vectors()[rows], _content_only(grown, list(rows)), atol=1e-6
    )
    np.testing.assert_array_equal(grown.item_vectors()[:n], fitted.item_vectors())
    # A new item sits with its cluster, in search and item→item alike.
    vectors = grown.item_vectors()
    a_rows = [grown.item_index[f"a{i}"] for i in range(10)]
    b_rows = [grown.item_index[f"b{i}"] for i in range(10)]
    assert (vectors[a_rows] @ vectors[n]).mean() > (vectors[b_rows] @ vectors[n]).mean()
    ids, _ = in_mode(grown, "tower").search(["alpha sunny beach today"], k=12)
    assert "a_fresh" in ids[0] and all(i.startswith("a") for i in ids[0])
    ids, _ = grown.search(["alpha sunny beach today"], k=12)
    assert ids[0, 0] == "a_fresh", "hybrid search: its own title, word for word"
    ids, _ = grown.similar(["b_fresh"], k=5)
    assert sum(i.startswith("b") for i in ids[0]) >= 4
    # The time prior knows its publish time: never published before now → not yet seen.
    before, after = grown.item_prior(T0 + 400 * HOUR), grown.item_prior(T0 + 502 * HOUR)
    assert before.shape == (n + 2,) and np.isfinite(after).all()
    assert before[n] != after[n]
    assert grown.add_items(_fresh()).tolist() == [], "known ids are skipped"


def test_clicks_on_added_items_count_as_history(fitted: TwoTower) -> None:
    """Issue 11: 20 clicks on items outside the model changed 0 of 20 recommendations."""
    grown, _ = fitted.with_items(_fresh())
    now = T0 + 600 * HOUR
    empty = grown.encode_users(_query(grown, [], now))
    for fresh, cluster in (("a_fresh", "a"), ("b_fresh", "b")):
        vector = grown.encode_users(_query(grown, [fresh] * 3, now))
        assert not np.allclose(vector, empty)
        ids, _ = grown.recommend_queries(_query(grown, [fresh] * 3, now), k=5)
        assert sum(i.startswith(cluster) for i in ids[0]) >= 3
    # The one-query serving path reads the same rows.
    rows = np.array([grown.item_index["a_fresh"]] * 3)
    times = np.full(3, now - HOUR, dtype=np.int64)
    np.testing.assert_allclose(
        grown.encode_history(rows, times, now),
        grown.encode_users(_query(grown, ["a_fresh"] * 3, now))[0],
        atol=1e-5,
    )


def test_added_items_survive_save_and_load(fitted: TwoTower, tmp_path: Path) -> None:
    grown, _ = fitted.with_items(_fresh())
    loaded = TwoTower.load(grown.save(tmp_path / "grown"))
    assert loaded.item_ids_.tolist() == grown.item_ids_.tolist()
    np.testing.assert_allclose(loaded.item_vectors(), grown.item_vectors(), atol=1e-6)
    now = T0 + 600 * HOUR
    query = _query(grown, ["a_fresh", "b2"], now)
    np.testing.assert_allclose(loaded.score(query), grown.score(query), rtol=1e-5, atol=1e-5)


def test_add_items_needs_a_fitted_model_and_an_id_column(fitted: TwoTower) -> None:
    with pytest.raises(ValueError, match="fitted model"):
        TwoTower().add_items(_fresh())
    with pytest.raises(ValueError, match="item_id column"):
        fitted.with_items(_fresh().drop(columns="item_id"))
    with pytest.raises(ValueError, match="milliseconds"):
        fitted.with_items(_fresh().assign(publish_time=T0 * 1000))


def test_similar_search_and_category_honour_now(fitted: TwoTower) -> None:
    """Issue 11: the three tasks ignored ``now`` (stale or unpublished news)."""
    grown, rows = fitted.with_items(_fresh())
    published = T0 + 500 * HOUR
    before, after = published - HOUR, published + 2 * HOUR
    assert not grown.known_at(before)[rows].any() and grown.known_at(after)[rows].all()
    search = grown.search(["alpha sunny beach today"], k=12, now=before)[0]
    assert "a_fresh" not in search[0]
    timeless_search = grown.search(["alpha sunny beach today"], k=24)
    late_search = grown.search(["alpha sunny beach today"], k=24, now=after)
    # Search adds no prior (as /v1/search): now only removes what does not exist yet.
    assert "a_fresh" in timeless_search[0][0]
    assert late_search[0].tolist() == timeless_search[0].tolist()
    np.testing.assert_array_equal(late_search[1], timeless_search[1])
    for task, request in ((grown.similar, ["a1"]), (grown.by_category, ["CatA"])):
        early, _ = task(request, k=12, now=before)
        assert "a_fresh" not in early[0], task.__name__
        timeless, timeless_scores = task(request, k=24)
        late, _ = task(request, k=24, now=after, prior_weight=0.0)
        # With no prior weight, now only removes what does not exist yet.
        assert late[0].tolist() == timeless[0].tolist()
        with_prior, scores = task(request, k=24, now=after)
        prior = grown.item_prior(after)
        base = dict(zip(timeless[0], timeless_scores[0], strict=True))
        for item, score in zip(with_prior[0], scores[0], strict=True):
            assert score == pytest.approx(base[item] + prior[grown.item_index[item]], abs=1e-4)


def test_unpublished_items_are_never_recommended(fitted: TwoTower) -> None:
    grown, rows = fitted.with_items(_fresh())
    published = T0 + 500 * HOUR
    early = grown.score(_query(grown, ["a1"], published - HOUR))
    late = grown.score(_query(grown, ["a1"], published + 2 * HOUR))
    assert np.isneginf(early[0, rows]).all() and np.isfinite(late[0, rows]).all()
    assert np.isfinite(early[0, : rows[0]]).all(), "items without times always exist"
