"""The validation window's metrics: the blend's score is the per-user metric, vectorised."""

from __future__ import annotations

import numpy as np
import pytest

from recops.models.two_tower.validation import Blend, ValidationTargets


def test_the_validation_metric_counts_recall_beside_ndcg() -> None:
    """Two users; list A hits user 0's single target at rank 1, list B hits two of
    user 1's four targets lower down: NDCG prefers A, NDCG + recall prefers B."""
    targets = ValidationTargets.of([np.array([0]), np.array([5, 6, 7, 8])], 14)
    b = np.zeros((2, 14))  # scores over 14 items: higher first
    b[0, [1, 2, 0]] = [3, 2, 1]  # user 0's target at rank 3
    b[1, [9, 10, 5, 6]] = [4, 3, 2, 1]  # two of user 1's targets at ranks 3 and 4
    a_full = np.zeros((2, 14))
    a_full[0, [0, 1, 2]] = [3, 2, 1]  # rank 1
    a_full[1, [9, 10, 11, 12]] = [4, 3, 2, 1]  # no hit
    ndcg = {n: Blend.of(s, targets, 4, (1.0, 1.0)).ndcg for n, s in (("a", a_full), ("b", b))}
    both = {
        n: Blend.of(s, targets, 4, (1.0, 1.0), metric="ndcg@20+recall@20").ndcg
        for n, s in (("a", a_full), ("b", b))
    }
    assert ndcg["a"] > ndcg["b"] and both["b"] > both["a"]
    # The sum is the two per-user means added: user 0 scores 1 + 1 with A.
    assert both["a"] == pytest.approx((2.0 + 0.0) / 2)


def test_the_vectorised_validation_metrics_equal_a_loop_per_user() -> None:
    rng = np.random.default_rng(3)
    n_items, k = 50, 20
    lists = [rng.choice(n_items, size=rng.integers(0, 30), replace=False) for _ in range(40)]
    scores = rng.normal(size=(40, n_items))
    top = np.argsort(-scores, axis=1)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall = [], []
    for row, t in zip(top, lists, strict=True):
        if len(t):
            hit = np.isin(row, t)
            ndcg.append((hit * discounts).sum() / discounts[: min(len(t), k)].sum())
            recall.append(hit.sum() / len(t))
    expected = np.mean(ndcg) + np.mean(recall)
    blend = Blend.of(scores, ValidationTargets.of(lists, n_items), k, (1.0, 1.0),
                     metric="ndcg@20+recall@20")  # fmt: skip
    assert blend.ndcg == pytest.approx(expected, rel=1e-12)
    empty = ValidationTargets.of([np.array([], dtype=np.int64)] * 3, 5)
    assert not empty.hits(np.zeros((3, 4), dtype=np.int64)).any()
