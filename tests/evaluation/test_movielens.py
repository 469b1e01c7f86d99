"""A small end-to-end check on ML-100K (skipped when the public data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.evaluation import evaluate, implicit_only, temporal_split
from recops.models.baselines import MostPopular, RecentPopular


def test_recent_popularity_on_ml100k_temporal_split(shared_data: Path) -> None:
    loaders = pytest.importorskip("recops.data.loaders")
    data = loaders.load_dataset("ml-100k", data_dir=shared_data)
    split = temporal_split(implicit_only(data.interactions), 0.8)
    assert len(split.train) == pytest.approx(80_000, rel=0.01)
    train_users = set(split.train["user_id"])
    cold_users = {u for u, c in zip(split.queries.user_ids, split.is_cold, strict=True) if c}
    assert cold_users and not cold_users & train_users

    recent = evaluate(RecentPopular(window_days=7).fit(split.train), split, n_boot=200)
    popular = evaluate(MostPopular().fit(split.train), split, n_boot=200)
    # Measured before on this split: recent-window popularity NDCG@20 ≈ 0.23 for users
    # with a training history; all-time popularity is clearly worse for them.
    assert 0.18 < recent.mean("ndcg@20", "warm") < 0.28
    assert recent.mean("ndcg@20", "warm") > popular.mean("ndcg@20", "warm") + 0.03
    interval = recent.summary("all")["ndcg@20"]
    assert 0.2 < interval.low < interval.mean < interval.high < 0.45
