"""Tiny synthetic data for the two-tower tests: two clusters of users and items."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from recops.models.two_tower import TwoTower
from recops.models.two_tower.config import TwoTowerConfig

T0 = 1_600_000_000
HOUR = 3600

#: A configuration small enough to train in about a second.
SMALL = {
    "dim": 16,
    "hidden": 32,
    "max_history": 10,
    "text_buckets": 256,
    "epochs": 5,
    "batch_size": 64,
    "uniform_negatives": 16,
    "learning_rate": 0.01,
    "validation_fraction": 0.2,
    "patience": 6,
    "prior_windows": (HOUR, 24 * HOUR),
    "prior_horizons": (24 * HOUR,),
    "prior_group_size": 8,
    "seed": 3,
}


def two_clusters(n_users: int = 60, per_cluster: int = 10, per_user: int = 12, seed: int = 0):
    """Users of cluster ``a`` only touch items ``a*``, users of ``b`` only ``b*``.

    The catalog adds one item per cluster that nobody interacted with (``a_new``,
    ``b_new``), described by its cluster's words and category.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = "ab"[u % 2]
        start = T0 + int(rng.integers(0, 20 * 24)) * HOUR
        picks = rng.choice(per_cluster, size=per_user, replace=True)
        rows += [(f"u{u}", f"{cluster}{i}", start + k * HOUR) for k, i in enumerate(picks)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    words = {"a": "alpha sunny beach", "b": "beta rainy mountain"}
    ids = [f"{c}{i}" for c in "ab" for i in range(per_cluster)] + ["a_new", "b_new"]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"{words[i[0]]} {i}" for i in ids],
            "categories": [["Cat" + i[0].upper()] for i in ids],
            "publish_time": pd.Series([None] * len(ids), dtype="Int64"),
        }
    )
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True), items


@pytest.fixture(scope="session")
def clusters():
    return two_clusters()


@pytest.fixture(scope="session")
def fitted(clusters) -> TwoTower:
    torch.set_num_threads(1)
    interactions, items = clusters
    return TwoTower(**SMALL).fit(interactions, items)


def in_mode(model: TwoTower, search_mode: str) -> TwoTower:
    """A shallow copy of the fitted ``model`` that searches in ``search_mode``."""
    other = copy.copy(model)
    other.config = TwoTowerConfig(**{**model.config.model_dump(), "search_mode": search_mode})
    return other
