"""The two-tower's item-item term: its weight, its sums, the served one-user path, the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from recops.models.two_tower.item_knn import ItemKnnTerm, knn_weights

from .conftest import SMALL


def _term(weight: float = 2.0, max_history: int = 10) -> ItemKnnTerm:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 30, 400)
    rows = (users % 3) * 4 + rng.integers(0, 4, 400)  # three groups of four items
    return ItemKnnTerm.fit(
        users, rows, 12, neighbors=5, shrink=1.0, weight=weight, max_history=max_history
    )


def test_the_weight_falls_from_kappa_to_zero_at_a_full_history() -> None:
    w = knn_weights(np.arange(0, 13), 8.0, 10)
    assert w[0] == pytest.approx(8.0)
    assert np.all(np.diff(w) <= 0)
    assert np.all(w[10:] == 0.0)
    assert 0 < w[3] < w[1]
    # The request path computes it in its kernel: the same float32 for every length.
    one_neighbour = ItemKnnTerm(sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 2)), 8.0, 10)
    served = [one_neighbour.one(np.zeros(n, dtype=np.int64))[1] for n in range(1, 13)]
    assert [v[0] if len(v) else 0.0 for v in served] == w[1:].tolist()


def test_sums_are_the_binary_history_times_the_similarity() -> None:
    term = _term()
    history = np.array([[0, 0, 1, 2], [0, 3, 3, 9], [0, 0, 0, 0]])  # indices: row + 1
    dense = term.similarity.toarray()
    expected = np.stack([dense[[0, 1]].sum(0), dense[[2, 8]].sum(0), np.zeros(12)])
    np.testing.assert_allclose(term.sums(history), expected, rtol=1e-6)
    weights = term.weights(np.array([2, 3, 0]))
    np.testing.assert_allclose(term.scores(history), weights[:, None] * expected, rtol=1e-6)


def test_one_users_path_equals_the_batch_path() -> None:
    term = _term()
    rows = np.array([5, 4, 5, 0])  # a repeat adds its neighbours once, counts in n
    got_rows, got = term.one(rows)
    history = np.zeros((1, 10), dtype=np.int64)
    history[0, -4:] = rows + 1
    full = term.scores(history)[0]
    assert np.all(np.diff(got_rows) > 0)
    np.testing.assert_allclose(got, full[got_rows], rtol=1e-6)
    assert set(got_rows) == set(np.flatnonzero(full))
    # A row outside the similarity (an item added since) has no neighbours to add.
    outside = term.one(np.array([5, 4, 5, 0, term.similarity.shape[0] + 3]))[0]
    assert outside.tolist() == got_rows.tolist()


def test_a_long_history_gets_nothing_and_grown_items_no_neighbours() -> None:
    term = _term(max_history=3)
    rows, values = term.one(np.array([0, 1, 2, 4, 5]))
    assert len(rows) == 0 and len(values) == 0
    grown = term.grown(15)
    assert grown.similarity.shape == (15, 15)
    assert grown.similarity[12:].nnz == 0
    np.testing.assert_array_equal(
        grown.similarity[:12].toarray()[:, :12], term.similarity.toarray()
    )


@pytest.fixture(scope="module")
def with_term(clusters) -> tuple[TwoTower, TwoTower]:
    torch.set_num_threads(1)
    interactions, items = clusters
    on = TwoTower(**SMALL, item_knn_weight=4.0).fit(interactions, items)
    off = TwoTower(**SMALL, item_knn_neighbors=0).fit(interactions, items)
    return on, off


def test_the_score_adds_the_term_for_short_histories_only(with_term) -> None:
    on, off = with_term
    assert on.summary_.item_knn_weight == 4.0
    assert off.summary_.item_knn_weight == 0.0
    short = Queries(["u0"], [np.array(["a1", "a2"], dtype=object)], [np.array([1, 2])], [10**10])
    items = np.array([f"a{i % 10}" for i in range(12)], dtype=object)
    long = Queries(["u0"], [items], [np.arange(12)], [10**10])
    for q, changed in ((short, True), (long, False)):
        diff = on.score(q) - off.score(q)
        finite = np.isfinite(diff)
        assert np.any(np.abs(diff[finite]) > 1e-4) == changed
    # The served path's rows and values are the batch path's difference.
    rows, values = on.item_knn_scores(np.array([on.item_index["a1"], on.item_index["a2"]]))
    history = np.zeros((1, SMALL["max_history"]), dtype=np.int64)
    history[0, -2:] = [on.item_index["a1"] + 1, on.item_index["a2"] + 1]
    np.testing.assert_allclose(values, on._item_knn.scores(history)[0, rows], rtol=1e-6)
    assert len(rows) > 0


def test_the_term_survives_save_load_and_added_items(with_term, tmp_path) -> None:
    on, _ = with_term
    on.save(tmp_path / "m")
    loaded = TwoTower.load(tmp_path / "m")
    q = Queries(["new"], [np.array(["b1"], dtype=object)], [np.array([1])], [10**10])
    np.testing.assert_allclose(loaded.score(q), on.score(q), rtol=1e-5, atol=1e-5)
    grown, added = loaded.with_items(pd.DataFrame({"item_id": ["c_new"], "title": ["gamma"]}))
    assert grown.score(q).shape == (1, len(on.item_ids_) + 1)
    rows, _ = grown.item_knn_scores(np.array([grown.item_index["b1"]]))
    assert added[0] not in rows


def test_the_weight_is_chosen_on_validation_from_its_grid(fitted) -> None:
    from recops.models.two_tower.item_knn import KNN_WEIGHT_GRID

    assert fitted.summary_.item_knn_weight in KNN_WEIGHT_GRID


def test_the_window_scores_every_weight_and_similarity_and_keeps_the_best(clusters) -> None:
    from recops.models.two_tower.config import TwoTowerConfig
    from recops.models.two_tower.item_knn import (
        KNN_NEIGHBOR_GRID,
        KNN_SHRINK_GRID,
        KNN_WEIGHT_GRID,
    )
    from recops.models.two_tower.preparation import prepare
    from recops.models.two_tower.training import TrainingSummary, _run_epochs
    from recops.models.two_tower.validation import split_validation, validation_item_knn

    torch.set_num_threads(1)
    interactions, items = clusters
    cfg = TwoTowerConfig(**{**SMALL, "epochs": 1})
    data = prepare(cfg, interactions, items).data
    rows, window = split_validation(data, cfg.validation_fraction)
    net = _run_epochs(data, cfg, rows, 1, None, TrainingSummary(), False)
    choice = validation_item_knn(net, data, cfg, window, rows, net.prior, (1.0, 1.0))
    grid = [(n, s, w) for n in KNN_NEIGHBOR_GRID for s in KNN_SHRINK_GRID for w in KNN_WEIGHT_GRID]
    assert list(choice.scores) == grid
    best = max(choice.scores.values())
    # The best score, ties to the smaller weight (the term only where it helps), then
    # to the earlier similarity (fewer neighbours, less shrinkage).
    tied = [key for key, score in choice.scores.items() if score == best]
    weight = min(key[2] for key in tied)
    first = next(key for key in tied if key[2] == weight)
    assert (choice.neighbors, choice.shrink, choice.weight) == first
    assert len(set(choice.scores.values())) > 1  # the weight does move the window's score
    # Fixed by the configuration: only that similarity and weight are scored.
    fixed = cfg.model_copy(update={"item_knn_neighbors": 7, "item_knn_shrink": 0.0})
    fixed = fixed.model_copy(update={"item_knn_weight": 2.0})
    choice = validation_item_knn(net, data, fixed, window, rows, net.prior, (1.0, 1.0))
    assert list(choice.scores) == [(7, 0.0, 2.0)]


def test_the_similarity_grid_follows_the_configuration_and_the_memory_bound() -> None:
    from recops.models.two_tower.item_knn import KNN_MAX_ENTRIES, similarity_grid

    assert similarity_grid(1_000, None, None) == [
        (100, 10.0),
        (100, 50.0),
        (300, 10.0),
        (300, 50.0),
    ]
    assert similarity_grid(1_000, 20, None) == [(20, 10.0), (20, 50.0)]
    assert similarity_grid(1_000, None, 0.0) == [(100, 0.0), (300, 0.0)]
    # 300 neighbours over this catalog could exceed the bound: only 100 is tried.
    big = KNN_MAX_ENTRIES // 300 + 1
    assert similarity_grid(big, None, 5.0) == [(100, 5.0)]
    assert similarity_grid(10 * KNN_MAX_ENTRIES, None, 5.0) == [(100, 5.0)]


def test_only_the_last_events_of_a_history_are_summed() -> None:
    from recops.models.two_tower.item_knn import SUMMED_HISTORY

    rng = np.random.default_rng(2)
    users = rng.integers(0, 50, 3000)
    term = ItemKnnTerm.fit(
        users, rng.integers(0, 40, 3000), 40, neighbors=8, shrink=1.0, weight=1.0, max_history=50
    )
    rows = rng.permutation(40)[:30]  # 30 distinct items, oldest first
    history = np.zeros((1, 50), dtype=np.int64)
    history[0, -30:] = rows + 1
    recent = np.zeros((1, 50), dtype=np.int64)
    recent[0, -SUMMED_HISTORY:] = rows[-SUMMED_HISTORY:] + 1
    np.testing.assert_allclose(term.sums(history), term.sums(recent), rtol=1e-6)
    # The weight is still that of all 30 events; the served path agrees with the batch.
    got_rows, got = term.one(rows)
    full = term.scores(history)[0]
    np.testing.assert_allclose(got, full[got_rows], rtol=1e-6)
    assert set(got_rows) == set(np.flatnonzero(full))
    assert got.max() < term.one(rows[-SUMMED_HISTORY:])[1].max()  # 30 events fade it more


def test_the_chosen_similarity_is_the_served_one_after_save_and_load(with_term, tmp_path) -> None:
    from recops.models.two_tower.item_knn import KNN_NEIGHBOR_GRID, KNN_SHRINK_GRID

    fitted = with_term[0]  # its weight fixed, its similarity chosen on the window
    summary = fitted.summary_
    assert summary.item_knn_neighbors in KNN_NEIGHBOR_GRID
    assert summary.item_knn_shrink in KNN_SHRINK_GRID
    fitted.save(tmp_path / "m")
    loaded = TwoTower.load(tmp_path / "m")
    assert (loaded.summary_.item_knn_neighbors, loaded.summary_.item_knn_shrink) == (
        summary.item_knn_neighbors,
        summary.item_knn_shrink,
    )
    a, b = loaded._item_knn.similarity, fitted._item_knn.similarity
    assert (a != b).nnz == 0


def test_an_artifact_from_before_the_choice_keeps_its_configured_similarity() -> None:
    from recops.models.two_tower.config import TwoTowerConfig
    from recops.models.two_tower.training import TrainingSummary, item_knn_similarity

    old = TrainingSummary(item_knn_weight=4.0)  # stored without the chosen similarity
    assert item_knn_similarity(
        TwoTowerConfig(item_knn_neighbors=100, item_knn_shrink=10.0), old
    ) == (
        100,
        10.0,
    )
    assert item_knn_similarity(TwoTowerConfig(), old) == (100, 10.0)  # no window: the first
    chosen = TrainingSummary(item_knn_neighbors=300, item_knn_shrink=50.0)
    assert item_knn_similarity(TwoTowerConfig(), chosen) == (300, 50.0)
