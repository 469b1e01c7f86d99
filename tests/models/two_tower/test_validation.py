"""The validation window's metrics: the blend's score is the per-user metric, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.preparation import prepare
from recops.models.two_tower.validation import (
    LEAVE_LAST_N_OUT,
    Blend,
    ValidationTargets,
    split_validation,
)


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


def test_the_leave_last_n_window_holds_out_each_users_last_events() -> None:
    """Mirrors ``leave_last_n_out``: history before, ``now`` at the first held-out event."""
    t0 = 1_600_000_000
    frame = pd.DataFrame(
        {
            # u1: 5 events, u2: 2 events (too few for n = 2 plus history), u3: 3 events.
            "user_id": ["u1"] * 5 + ["u2"] * 2 + ["u3"] * 3,
            "item_id": ["a", "b", "c", "d", "e", "a", "b", "c", "d", "c"],
            "timestamp": [t0 + s for s in (0, 10, 20, 30, 40, 5, 15, 25, 35, 45)],
        }
    )
    data = prepare(TwoTowerConfig(max_history=4), frame).data
    rows, window = split_validation(data, 0.1, LEAVE_LAST_N_OUT, leave_out=2)
    seq = data.sequences
    item = {name: i + 1 for i, name in enumerate("abcde")}
    # Held out: u1's d, e and u3's d, c; u2 keeps both its events (2 < 2 + 1).
    assert sorted(zip(seq.users[rows].tolist(), seq.items[rows].tolist(), strict=True)) == [
        (1, item["a"]),
        (1, item["b"]),
        (1, item["c"]),
        (2, item["a"]),
        (2, item["b"]),
        (3, item["c"]),
    ]
    assert window.users.tolist() == [1, 3]
    assert window.now.tolist() == [t0 + 30, t0 + 35]
    assert window.history.tolist() == [
        [0, item["a"], item["b"], item["c"]],
        [0, 0, 0, item["c"]],
    ]
    # A target the user already has in the history is not a target (u3's second c).
    assert [t.tolist() for t in window.targets] == [[item["d"], item["e"]], [item["d"]]]
    assert window.warm.all()
    assert window.counts is not None
    assert window.start == t0 + 25 + 1  # after the last event the towers train on
