"""The training loop's bookkeeping: time-local batches and the prior's per-row ``now``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower import TwoTower
from recops.models.two_tower.training import prior_times, time_local_order
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


def test_the_summary_says_what_the_window_chose() -> None:
    from recops.models.two_tower.training import TrainingSummary

    chosen = TrainingSummary(
        validation_start=1,
        best_epoch=5,
        tower_weights=(0.4, 0.15),
        prior_window=30 * 86_400,
        item_knn_weight=8.0,
        item_knn_neighbors=300,
        item_knn_shrink=10.0,
    )
    assert chosen.choices() == (
        "epoch 5; prior: recent popularity over 30 days; tower weight 0.4 for an empty "
        "history, 0.15 for a full one; item-item term for short histories: weight 8, "
        "300 neighbours, shrinkage 10"
    )
    fitted = TrainingSummary(validation_start=1, best_epoch=2, prior_horizon=86_400)
    assert "popularity fitted to a horizon of 1 day;" in fitted.choices()
    assert fitted.choices().endswith("short histories: off")
    assert "the jointly trained one" in TrainingSummary(validation_start=1).choices()
    assert TrainingSummary().choices().startswith("no validation window")
