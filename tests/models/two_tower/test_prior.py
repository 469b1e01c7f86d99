"""The horizon prior: targets from future windows only, and it learns what trends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recops.models.two_tower.features import build_time_counts
from recops.models.two_tower.prior import (
    TIE_BREAK,
    fit_horizon_prior,
    horizon_targets,
    window_prior,
)

DAY = 86_400


def test_targets_are_the_shares_of_the_next_horizon() -> None:
    items = np.array([1, 2, 2, 1, 2, 2, 2])
    times = np.array([0, 1, 2, 10, 11, 12, 13]) * DAY
    counts = build_time_counts(items, times, 2, (DAY,), max_cells=10_000)
    shares = horizon_targets(counts, np.array([10 * DAY, 0]), 3 * DAY, 2)
    np.testing.assert_allclose(shares, [[1 / 3, 2 / 3], [1 / 3, 2 / 3]], rtol=1e-6)


def test_prior_follows_recent_counts_rather_than_all_time_counts() -> None:
    # Item 1 was big long ago; item 2 is what everybody takes lately and next.
    rng = np.random.default_rng(0)
    old = np.full(400, 1)
    old_t = rng.integers(0, 30 * DAY, size=400)
    new = rng.choice([1, 2], p=[0.1, 0.9], size=600)
    new_t = rng.integers(60 * DAY, 120 * DAY, size=600)
    items, times = np.r_[old, new], np.r_[old_t, new_t]
    counts = build_time_counts(items, times, 2, (7 * DAY, 30 * DAY), max_cells=100_000)
    prior = fit_horizon_prior(counts, times, 2, 7 * DAY, end=int(times.max()) + 1, seed=0)
    with torch.no_grad():
        feats = torch.from_numpy(counts.features(np.array([1, 2]), np.array(110 * DAY)))
        scores = prior(feats).numpy()
    assert scores[1] > scores[0] + 1.0


def test_window_prior_is_recent_popularity_with_all_time_ties() -> None:
    items = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3])
    times = np.array([0, 1, 2, 40, 41, 40, 3, 4, 5]) * DAY
    counts = build_time_counts(items, times, 3, (7 * DAY, 30 * DAY), max_cells=100_000)
    prior = window_prior(counts, 7 * DAY)
    feats = counts.features(np.arange(1, 4), np.int64(45 * DAY))
    with torch.no_grad():
        scores = prior(torch.from_numpy(feats)).numpy()
    # Last 7 days: item 2 twice, item 3 once, item 1 never; ties by all-time count.
    expected = np.log1p([0.0, 2.0, 1.0]) + TIE_BREAK * np.log1p([3.0, 2.0, 4.0])
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="one of"):
        window_prior(counts, DAY)
