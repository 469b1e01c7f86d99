"""The training loop's bookkeeping: time-local batches and the prior's per-row ``now``."""

from __future__ import annotations

import numpy as np
import pytest

from recops.models.two_tower.training import prior_times, time_local_order


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
