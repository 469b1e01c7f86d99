"""The training loop's bookkeeping: time-local batches and the prior's per-row ``now``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower import TwoTower
from recops.models.two_tower.training import (
    Blend,
    ValidationTargets,
    prior_times,
    time_local_order,
)
from tests.models.two_tower.conftest import HOUR, SMALL, two_clusters


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_each_row_gets_the_earliest_time_of_its_own_group(seed: int) -> None:
    """Issue 11: after the regrouping, rows were matched to another group's ``now``.

    The prior of a batch was evaluated at the minimum of every ``group_size`` slice
    of the batch, but the shuffled groups (the first one cut short at a random
    offset) do not start at multiples of ``group_size``: a slice straddled two
    groups and gave the later one the earlier one's time (days early, in a replica).
    """
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 100 * 86_400, size=5_000))
    rows = np.arange(len(times))
    order, groups = time_local_order(rows, times, 32, rng)
    assert sorted(order.tolist()) == rows.tolist()
    for start in range(0, len(order), 1024):
        batch, batch_groups = order[start : start + 1024], groups[start : start + 1024]
        group_now, row_group = prior_times(times[batch], batch_groups)
        now = group_now[row_group]
        for g in np.unique(batch_groups):
            members = batch[batch_groups == g]
            # The group's earliest event: causal for every row of it, and no earlier.
            assert (now[batch_groups == g] == times[members].min()).all()
        assert (now <= times[batch]).all()
        assert len(group_now) == len(np.unique(batch_groups))


def test_groups_are_time_contiguous_runs_of_the_group_size() -> None:
    rng = np.random.default_rng(0)
    times = rng.permutation(1_000)
    order, groups = time_local_order(np.arange(1_000), times, 10, rng)
    sizes = np.bincount(groups)
    assert (sizes <= 10).all() and (sizes[sizes < 10].size <= 2)
    for g in np.unique(groups):
        t = np.sort(times[order[groups == g]])
        assert (np.diff(t) == 1).all(), "a group is a run of consecutive times"


def test_items_first_seen_in_the_validation_window_are_trained() -> None:
    """Issue 11: with early stopping, the final towers never trained on the window.

    Items first seen there kept untrained id rows, and they are the users' newest
    items. After early stopping the best network now continues on every event.
    """
    interactions, items = two_clusters(n_users=40)
    end = int(interactions["timestamp"].max())
    late = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(0, 40, 2)],
            "item_id": "a_late",
            "timestamp": end + HOUR * np.arange(1, 21),
        }
    )
    events = pd.concat([interactions, late], ignore_index=True)
    model = TwoTower(**SMALL).fit(events, items)
    row = model.item_index["a_late"] + 1
    assert model.summary_.validation_start is not None
    assert model.summary_.validation_start <= int(late["timestamp"].min())
    assert bool(model.net_.has_id[row]), "the window's item has a trained id row"
    frozen = TwoTower(**{**SMALL, "finetune_epochs": 0}).fit(events, items)
    assert not bool(frozen.net_.has_id[row]), "without fine-tuning it stays content-only"


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
