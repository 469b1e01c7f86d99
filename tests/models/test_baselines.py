"""Baselines on tiny frames whose right answer is obvious."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.base import Queries
from recops.models.baselines import (
    ALS,
    BPR,
    EASE,
    BM25Search,
    CategoryPopular,
    ItemKNN,
    MostPopular,
    RecentPopular,
)

DAY = 86_400


def _events(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    df["event"], df["value"] = "click", 1.0
    return df.astype({"user_id": object, "item_id": object})


@pytest.fixture
def clusters() -> pd.DataFrame:
    """Even users consume a and b, odd users c and d; c is the most popular item."""
    rows = []
    for u in range(24):
        for item in ("a", "b") if u % 2 == 0 else ("c", "d"):
            rows.append((f"u{u}", item, 100 * u))
    rows += [(f"u{u}", "c", 5000) for u in range(0, 8, 2)]
    return _events(rows)


def _query(history: list[str], now: int = 10**9, user: str = "newcomer") -> Queries:
    return Queries(
        [user],
        [np.array(history, dtype=object)],
        [np.arange(len(history), dtype=np.int64)],
        np.array([now]),
    )


def test_most_popular_ranks_by_distinct_users(clusters: pd.DataFrame) -> None:
    model = MostPopular().fit(clusters)
    ids, _ = model.recommend_queries(_query([]), k=1)
    assert ids[0, 0] == "c"
    ids, _ = model.recommend_queries(_query(["c"]), k=1)
    assert ids[0, 0] != "c", "seen items are excluded"


@pytest.mark.parametrize(
    "model",
    [
        ItemKNN(n_neighbors=5, shrink=0.0),
        EASE(l2=1.0),
        ALS(factors=4, regularization=0.1, iterations=20),
        BPR(factors=4, iterations=300, learning_rate=0.05),
    ],
    ids=["itemknn", "ease", "als", "bpr"],
)
def test_cold_user_gets_the_co_occurring_item(clusters: pd.DataFrame, model) -> None:
    model.fit(clusters)
    ids, _ = model.recommend_queries(_query(["a"], user="never-seen"), k=1)
    assert ids[0, 0] == "b"
    ids, _ = model.recommend_queries(_query(["d"], user="never-seen"), k=1)
    assert ids[0, 0] == "c"


@pytest.mark.parametrize("model_cls", [ALS, BPR])
def test_matrix_factorisation_warm_users_use_trained_factors(clusters, model_cls) -> None:
    model = model_cls(factors=4, iterations=30).fit(clusters)
    assert model.recommend(["u1"], k=1)["item_id"].tolist() != ["c"]
    scores = model.score(Queries.from_interactions(clusters, ["u1"]))
    np.testing.assert_allclose(scores[0], model.user_factors_[1] @ model.item_factors_.T)


def test_itemknn_similarity_by_hand() -> None:
    # a: users 1,2,3; b: users 1,2; c: user 3. co(a,b)=2, c_a=3, c_b=2.
    events = _events([("1", "a", 0), ("2", "a", 0), ("3", "a", 0), ("1", "b", 0), ("2", "b", 0)])
    events = pd.concat([events, _events([("3", "c", 0)])])
    model = ItemKNN(shrink=1.0).fit(events)
    sim = model.similarity_.toarray()
    a, b, c = (list(model.item_ids_).index(i) for i in "abc")
    assert sim[a, b] == pytest.approx(2 / (np.sqrt(3 * 2) + 1.0), rel=1e-5)
    assert sim[b, c] == 0.0 and sim[a, a] == 0.0
    ids, scores = model.similar(["a", "unknown"], k=2)
    assert ids[0, 0] == "b" and "a" not in ids[0]
    assert np.isneginf(scores[1]).all()


def test_itemknn_keeps_only_top_neighbours(clusters: pd.DataFrame) -> None:
    model = ItemKNN(n_neighbors=1).fit(clusters)
    assert (np.diff(model.similarity_.indptr) <= 1).all()


def test_ease_matches_the_closed_form(clusters: pd.DataFrame) -> None:
    model = EASE(l2=3.0).fit(clusters)
    x = np.zeros((24, len(model.item_ids_)))
    for u, i in clusters[["user_id", "item_id"]].itertuples(index=False):
        x[int(u[1:]), list(model.item_ids_).index(i)] = 1
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(x.shape[1]))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)


def test_recent_popular_respects_now() -> None:
    events = _events(
        [(f"x{u}", "x", 1 * DAY) for u in range(5)]
        + [(f"y{u}", "y", 9 * DAY) for u in range(3)]
        + [(f"z{u}", "z", 20 * DAY) for u in range(10)]  # after now: must never count
    )
    model = RecentPopular(window_days=7).fit(events)
    scores = model.score(_query([], now=10 * DAY))[0]
    by_item = dict(zip(model.item_ids_, scores, strict=True))
    assert by_item["y"] == pytest.approx(3, abs=1e-3)
    assert by_item["x"] < 1e-3 and by_item["z"] == 0.0
    # x outranks z: all-time popularity *before now* breaks the tie.
    ids, _ = model.recommend_queries(_query([], now=10 * DAY), k=3)
    assert ids[0].tolist() == ["y", "x", "z"]


def test_recent_popular_uses_each_querys_own_now() -> None:
    events = _events([("u1", "x", 1 * DAY), ("u2", "y", 30 * DAY), ("u3", "y", 31 * DAY)])
    model = RecentPopular(window_days=3)
    model.fit(events)
    queries = Queries(
        ["q1", "q2"],
        [np.array([], dtype=object)] * 2,
        [np.array([], dtype=np.int64)] * 2,
        np.array([2 * DAY, 32 * DAY]),
    )
    ids, _ = model.recommend_queries(queries, k=1)
    assert ids[:, 0].tolist() == ["x", "y"]
    # An event exactly at ``now`` is not "before now".
    at_now = model.score(_query([], now=30 * DAY))[0]
    assert at_now[list(model.item_ids_).index("y")] < 1e-3


def test_recent_popular_decay_prefers_fresher_events() -> None:
    events = _events([("a1", "old", 1 * DAY), ("a2", "old", 1 * DAY), ("b1", "new", 9 * DAY)])
    flat = RecentPopular(window_days=30).fit(events)
    decayed = RecentPopular(window_days=30, half_life_days=1).fit(events)
    assert flat.recommend_queries(_query([], now=10 * DAY), k=1)[0][0, 0] == "old"
    assert decayed.recommend_queries(_query([], now=10 * DAY), k=1)[0][0, 0] == "new"


def test_category_popular(clusters: pd.DataFrame) -> None:
    items = pd.DataFrame(
        {"item_id": list("abcd"), "title": list("abcd"), "categories": [["x"], ["x"], ["y"], ["x"]]}
    )
    model = CategoryPopular().fit(clusters, items)
    ids, scores = model.by_category(["y", "x", "nothing"], k=2)
    assert ids[0, 0] == "c" and np.isneginf(scores[0, 1])
    assert set(ids[1]) <= {"a", "b", "d"}
    assert np.isneginf(scores[2]).all()


def test_bm25_finds_the_titled_item() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "title": ["Toy Story (1995)", "Story of the Weeping Camel", "Heat (1995)"],
        }
    )
    ids, scores = BM25Search().fit(items).search(["toy story", "heat", "unknownword"], k=2)
    assert ids[0, 0] == "1" and ids[1, 0] == "3"
    assert scores[0, 0] > scores[0, 1] > 0
    assert (scores[2] == 0).all()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ItemKNN(n_neighbors=0), "`n_neighbors` must be an int 1..10000 (got 0)"),
        (lambda: EASE(l2=-1), "`l2`"),
        (lambda: RecentPopular(window_days=0), "`window_days`"),
        (lambda: RecentPopular(half_life_days=0), "`half_life_days`"),
        (lambda: ALS(factors=True), "`factors`"),
        (lambda: BPR(learning_rate="fast"), "`learning_rate`"),
        (lambda: BM25Search(b=2), "`b`"),
    ],
)
def test_parameters_are_validated(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        factory()


def test_fit_rejects_bad_frames() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        EASE().fit(pd.DataFrame({"user_id": ["1"], "item_id": ["a"]}))
    with pytest.raises(ValueError, match="empty"):
        MostPopular().fit(_events([]))
    with pytest.raises(ValueError, match="categories"):
        CategoryPopular().fit(_events([("1", "a", 0)]))


def test_ease_min_item_users_leaves_rare_items_out_of_the_model(clusters: pd.DataFrame) -> None:
    rare = pd.concat([clusters, _events([("u0", "rare", 1)])])
    model = EASE(l2=1.0, min_item_users=2).fit(rare)
    assert "rare" in model.item_ids_
    assert model.weights_.shape == (4, 4)
    ids, _ = model.recommend_queries(_query(["a", "rare"]), k=1)
    assert ids[0, 0] == "b"
    with pytest.raises(ValueError, match="min_item_users=100"):
        EASE(min_item_users=100).fit(clusters)
