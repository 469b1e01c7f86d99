"""New items on a tiny world: the share of their clicks, CTR with and without updates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recops.data.world import WorldConfig, generate_world
from recops.evaluation.freshness import logged_new_item_share, new_item_report
from recops.models.baselines import RecentPopular
from recops.models.two_tower import TwoTower

HOUR = 3600


@pytest.fixture(scope="module")
def tiny_world():
    world, data = generate_world(WorldConfig(n_users=150, n_items=300, days=4, seed=2))
    clicks = data.interactions[data.interactions["event"] == "click"]
    return world, clicks


def test_logged_share_counts_clicks_on_items_published_after_the_cutoff() -> None:
    clicks = pd.DataFrame({"item_id": ["a", "b", "b", "c"], "timestamp": [5, 10, 12, 15]})
    catalog = pd.DataFrame({"item_id": ["a", "b", "c"], "publish_time": [0, 1, 11]})
    assert logged_new_item_share(clicks, catalog, cutoff=10) == pytest.approx(1 / 3)


def test_item_updates_serve_new_items_and_the_oracle_bounds_every_policy(tiny_world) -> None:
    torch.set_num_threads(1)
    world, clicks = tiny_world
    cutoff = int(world.config.start_time + 3 * 24 * HOUR)
    small = {"dim": 16, "hidden": 32, "max_history": 10, "epochs": 2, "text_buckets": 512}
    report = new_item_report(
        world,
        clicks,
        cutoff,
        {
            "RecentPopular": lambda: RecentPopular(window_days=1),
            "TwoTower": lambda: TwoTower(**small),
        },
        n_requests=200,
    )
    values = {p.name: p for p in report.policies}
    assert set(values) == {"oracle", "RecentPopular", "TwoTower", "TwoTower + new items"}
    assert 0 < report.logged_new_item_click_share < 1
    for policy in report.policies:
        assert 0 <= policy.ctr <= values["oracle"].ctr + 1e-12
    # Without updates no model can show an item published after it was trained.
    assert values["TwoTower"].new_item_click_share == 0.0
    assert values["RecentPopular"].new_item_click_share == 0.0
    assert values["TwoTower + new items"].new_item_click_share > 0.0
    assert report.to_dict()["requests"] == report.n_requests <= 200
    assert np.isfinite([p.ctr for p in report.policies]).all()
