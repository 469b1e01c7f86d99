"""Behaviour of the fitted TwoTower: real-time users, cold items, tasks, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from recops.models.two_tower.inference import history_weight
from tests.models.two_tower.conftest import HOUR, SMALL, T0, two_clusters


def _query(history: list[str], user: str = "someone-new", now: int | None = None) -> Queries:
    times = np.array([T0 + k * HOUR for k in range(len(history))], dtype=np.int64)
    end = int(times[-1]) + HOUR if len(times) else T0
    return Queries(
        user_ids=[user],
        histories=[np.array(history, dtype=object)],
        history_times=[times],
        now=np.array([end if now is None else now], dtype=np.int64),
    )


def _cluster_margin(model: TwoTower, scores: np.ndarray, cluster: str, other: str) -> float:
    ids = model.item_ids_
    own = np.array([i.startswith(cluster) for i in ids])
    rival = np.array([i.startswith(other) for i in ids])
    return float(scores[own].mean() - scores[rival].mean())


def test_interface_shapes_and_unit_vectors(fitted: TwoTower) -> None:
    vectors = fitted.item_vectors()
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(fitted.item_ids_), fitted.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert all(fitted.item_ids_[row] == item for item, row in fitted.item_index.items())
    assert fitted.categories_ == ["CatA", "CatB"]
    assert fitted.item_prior(T0).shape == (len(fitted.item_ids_),)
    assert fitted.item_prior(T0).dtype == np.float32


def test_cold_user_vector_from_fresh_events_without_retraining(fitted: TwoTower) -> None:
    # "someone-new" never appears in training: only the three events define them.
    for cluster, other in (("a", "b"), ("b", "a")):
        queries = _query([f"{cluster}1", f"{cluster}2", f"{cluster}3"])
        user = fitted.encode_users(queries)
        assert user.shape == (1, fitted.dim)
        scores = (user @ fitted.item_vectors().T)[0] / np.linalg.norm(user)
        assert _cluster_margin(fitted, scores, cluster, other) > 0.2
        top = fitted.item_ids_[np.argsort(-scores)[:10]]
        assert sum(i.startswith(cluster) for i in top) >= 9


def test_empty_history_and_unknown_items_give_a_valid_vector(fitted: TwoTower) -> None:
    empty = fitted.encode_users(_query([]))
    unknown = fitted.encode_users(_query(["never-seen-item"]))
    cold_weight = fitted.summary_.tower_weights[0]
    np.testing.assert_allclose(np.linalg.norm(empty), cold_weight, rtol=1e-5)
    np.testing.assert_allclose(empty, unknown, rtol=1e-6)


def test_user_vector_norm_is_the_tower_weight_for_its_history_length(fitted: TwoTower) -> None:
    low, high = fitted.summary_.tower_weights
    full = ["a1", "a2", "a3", "b1", "b2"] * 2  # max_history (10) known items
    np.testing.assert_allclose(np.linalg.norm(fitted.encode_users(_query(full))), high, rtol=1e-5)
    np.testing.assert_allclose(
        history_weight(np.array([0, 3, 10, 50]), (0.5, 2.0), 10),
        [0.5, 0.5 + 1.5 * np.log(4) / np.log(11), 2.0, 2.0],
        rtol=1e-6,
    )
    assert low > 0 and high > 0


def test_numpy_user_path_matches_the_torch_tower(fitted: TwoTower) -> None:
    queries = _query(["a1", "b2", "a3", "a4"])
    fast = fitted.encode_users(queries)
    fast /= np.linalg.norm(fast)  # the norm is the tower weight, not part of the tower
    history = torch.tensor([[0] * 6 + [fitted.item_index[i] + 1 for i in ["a1", "b2", "a3", "a4"]]])
    ages = torch.tensor([[0.0] * 6 + [4.0, 3.0, 2.0, 1.0]])
    rows = (history - 1).clamp(min=0).numpy()
    cats = torch.from_numpy(fitted.catalog_.categories[rows]) * (history > 0).unsqueeze(-1)
    toks = torch.from_numpy(fitted.catalog_.tokens[rows]) * (history > 0).unsqueeze(-1)
    with torch.no_grad():
        emb = fitted.net_.history_vectors(history.ravel(), cats.flatten(0, 1), toks.flatten(0, 1))
        slow = fitted.net_.user(emb.reshape(1, 10, -1), history > 0, ages, None).numpy()
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_unseen_items_get_content_vectors_near_their_cluster(fitted: TwoTower) -> None:
    vectors = fitted.item_vectors()
    a_rows = [fitted.item_index[f"a{i}"] for i in range(10)]
    b_rows = [fitted.item_index[f"b{i}"] for i in range(10)]
    for new, own, other in (("a_new", a_rows, b_rows), ("b_new", b_rows, a_rows)):
        v = vectors[fitted.item_index[new]]
        assert (vectors[own] @ v).mean() > (vectors[other] @ v).mean()


def test_similar_search_and_category_tasks(fitted: TwoTower) -> None:
    ids, scores = fitted.similar(["a1", "b1"], k=5)
    assert ids.shape == scores.shape == (2, 5)
    assert "a1" not in ids[0] and "b1" not in ids[1]
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert sum(i.startswith("a") for i in ids[0]) >= 4
    ids, _ = fitted.search(["alpha sunny", "rainy mountain"], k=5)
    assert sum(i.startswith("a") for i in ids[0]) >= 4
    assert sum(i.startswith("b") for i in ids[1]) >= 4
    ids, _ = fitted.by_category(["CatB"], k=5)
    assert all(i.startswith("b") for i in ids[0])


def test_unknown_category_and_item_raise_key_errors_naming_them(fitted: TwoTower) -> None:
    with pytest.raises(KeyError, match="Nope"):
        fitted.encode_categories(["Nope"])
    with pytest.raises(KeyError, match="zz9"):
        fitted.encode_similar(["a1", "zz9"])


def test_score_adds_the_prior_of_each_query_time(fitted: TwoTower) -> None:
    queries = _query(["a1"], now=T0 + 30 * 24 * HOUR)
    expected = fitted.score_scale * (fitted.encode_users(queries) @ fitted.item_vectors().T)
    expected += fitted.item_prior(int(queries.now[0]))
    np.testing.assert_allclose(fitted.score(queries), expected, rtol=1e-5, atol=1e-5)


def test_recommend_known_users_excludes_their_items(fitted: TwoTower, clusters) -> None:
    interactions, _ = clusters
    recs = fitted.recommend(["u0", "u1"], k=5)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    for user, group in recs.groupby("user_id"):
        seen = set(interactions.loc[interactions.user_id == user, "item_id"])
        assert not seen & set(group.item_id)


def test_two_fits_with_one_seed_are_identical(clusters) -> None:
    interactions, items = clusters
    params = {**SMALL, "epochs": 2, "validation_fraction": 0.0}
    first = TwoTower(**params).fit(interactions, items).net_.state_dict()
    second = TwoTower(**params).fit(interactions, items).net_.state_dict()
    other = TwoTower(**{**params, "seed": 4}).fit(interactions, items).net_.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_fits_without_a_catalog() -> None:
    interactions, _ = two_clusters(n_users=30)
    model = TwoTower(**{**SMALL, "epochs": 1}).fit(interactions)
    assert model.categories_ == []
    assert set(model.item_ids_) == set(interactions.item_id)
    ids, _ = model.search(["alpha"], k=3)
    assert ids.shape == (1, 3)


def test_fit_rejects_bad_interactions(clusters) -> None:
    interactions, _ = clusters
    with pytest.raises(ValueError, match="missing \\['timestamp'\\]"):
        TwoTower(**SMALL).fit(interactions.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="integer unix seconds"):
        TwoTower(**SMALL).fit(interactions.assign(timestamp=interactions.timestamp * 0.5))
    with pytest.raises(ValueError, match="milliseconds: divide by 1000"):
        TwoTower(**SMALL).fit(interactions.assign(timestamp=interactions.timestamp * 1000))


def test_single_query_fast_path_matches_the_batch_path(fitted: TwoTower) -> None:
    histories = [["a1", "b2", "zzz", "a3"], [], ["b1"] * 15]
    batch = Queries(
        user_ids=["u0", "new", "u1"],
        histories=[np.array(h, dtype=object) for h in histories],
        history_times=[T0 + HOUR * np.arange(len(h), dtype=np.int64) for h in histories],
        now=np.array([T0 + 99 * HOUR] * 3, dtype=np.int64),
    )
    together = fitted.encode_users(batch)
    for row in range(3):
        one = Queries(
            [batch.user_ids[row]],
            [batch.histories[row]],
            [batch.history_times[row]],
            batch.now[row : row + 1],
        )
        np.testing.assert_allclose(fitted.encode_users(one), together[row : row + 1], atol=1e-6)


def test_fits_without_validation_when_the_window_would_be_empty() -> None:
    interactions, items = two_clusters(n_users=20)
    same_time = interactions.assign(timestamp=np.int64(T0))
    model = TwoTower(**{**SMALL, "epochs": 1}).fit(same_time, items)
    assert model.summary_.validation_start is None
    assert model.summary_.epochs_run == 1


@pytest.mark.parametrize("length", [0, 1, 3, 10, 25])
def test_the_one_user_serving_path_equals_the_batch_path(fitted: TwoTower, length: int) -> None:
    """``encode_history`` (compiled, one user) and ``encode_users`` (batched) agree."""
    rng = np.random.default_rng(length)
    ids = rng.choice(fitted.item_ids_, size=length).tolist()
    now = T0 + 500 * 3600
    times = np.sort(now - rng.integers(0, 300 * 3600, size=length)).astype(np.int64)
    if length:
        times[-1] = now + 60  # an event stamped after `now` counts as age 0
    rows = np.array([fitted.item_index[i] for i in ids], dtype=np.int64)
    queries = Queries(user_ids=["x"], histories=[ids], history_times=[times], now=[now])
    np.testing.assert_allclose(
        fitted.encode_history(rows, times, now), fitted.encode_users(queries)[0], atol=1e-5
    )
    # Plain int32 rows (a caller's own arrays) take the same path.
    np.testing.assert_allclose(
        fitted.encode_history(rows.astype(np.int32), times, now),
        fitted.encode_history(rows, times, now),
        atol=1e-6,
    )
