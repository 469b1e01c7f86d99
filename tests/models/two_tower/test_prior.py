"""The horizon prior: targets from future windows only, and it learns what trends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from recops.models.two_tower import prior as prior_module
from recops.models.two_tower.features import build_time_counts
from recops.models.two_tower.prior import (
    TIE_BREAK,
    _sample_items,
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


def test_a_sample_of_items_estimates_both_sums_of_the_loss() -> None:
    # A long-tailed catalog: the heaviest half of the sample is exact, the rest weighted.
    rng = np.random.default_rng(0)
    n_anchors, n_items, n_rows = 4, 5_000, 1_000
    targets = torch.from_numpy(rng.pareto(1.5, size=(n_anchors, n_items)).astype(np.float32))
    targets[:, rng.random(n_items) < 0.5] = 0.0
    targets /= targets.sum(dim=1, keepdim=True)
    feats = torch.from_numpy(rng.standard_normal((n_anchors, n_items, 3)).astype(np.float32))
    logits = feats.sum(dim=2)
    rows, sampled, log_w = _sample_items(feats, targets, n_rows, seed=1)
    assert rows.shape == (n_anchors, n_rows, 3) and sampled.shape == log_w.shape
    heaviest = torch.topk(targets, n_rows // 2, dim=1).values
    np.testing.assert_allclose(sampled[:, : n_rows // 2], heaviest, rtol=1e-6)
    np.testing.assert_allclose(log_w[:, n_rows // 2 :], np.log(9.0), rtol=1e-6)
    # Horvitz-Thompson: both sums are unbiased (averaged over the draws).
    numerators, normalisers = [], []
    for seed in range(40):
        rows, sampled, log_w = _sample_items(feats, targets, n_rows, seed=seed)
        numerators.append((sampled * rows.sum(dim=2)).sum(dim=1))
        normalisers.append(torch.exp(rows.sum(dim=2) + log_w).sum(dim=1))
    np.testing.assert_allclose(
        torch.stack(numerators).mean(dim=0), (targets * logits).sum(dim=1), atol=0.03
    )
    np.testing.assert_allclose(
        torch.stack(normalisers).mean(dim=0), torch.exp(logits).sum(dim=1), rtol=0.03
    )


def test_a_large_catalog_is_fitted_on_a_sample_that_ranks_like_the_exact_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 600 items with popularity drifting; above ROW_ITEMS the loss is estimated.
    rng = np.random.default_rng(0)
    n_items = 600
    times = np.sort(rng.integers(0, 60 * DAY, size=20_000))
    trend = np.linspace(0, 1, len(times))[:, None] * rng.standard_normal(n_items)
    appeal = rng.standard_normal(n_items) + trend
    p = np.exp(appeal - appeal.max(axis=1, keepdims=True))
    items = np.array([rng.choice(n_items, p=row / row.sum()) for row in p[::100]])
    items = np.repeat(items, 100)[: len(times)] + 1
    counts = build_time_counts(items, times, n_items, (DAY, 7 * DAY), max_cells=1_000_000)
    end = int(times.max()) + 1
    exact = fit_horizon_prior(counts, times, n_items, 7 * DAY, end, seed=0)
    monkeypatch.setattr(prior_module, "ROW_ITEMS", 128)
    sampled = fit_horizon_prior(counts, times, n_items, 7 * DAY, end, seed=0)
    feats = torch.from_numpy(counts.features(np.arange(1, n_items + 1), np.int64(50 * DAY)))
    with torch.no_grad():
        rho = spearmanr(exact(feats).numpy(), sampled(feats).numpy()).statistic
    assert rho > 0.95
