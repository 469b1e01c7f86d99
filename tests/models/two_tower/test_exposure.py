"""The exposure correction: clicks weighed against how often the logging policy showed each item."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower import TwoTower

from .conftest import SMALL, two_clusters


def _weights(model: TwoTower, impressions: pd.DataFrame | None) -> np.ndarray | None:
    frame, items = two_clusters()
    return model.prepare(frame, items, impressions).data.item_weights


def test_weights_follow_the_inverse_power_of_exposure() -> None:
    model = TwoTower(**SMALL, exposure_debias=0.5)
    # a0 shown 400 times, a1 100, a2 25 (median 100); b0 listed with counts.
    shown = pd.DataFrame({"item_id": ["a0"] * 400 + ["a1"] * 100 + ["a2"] * 25})
    prepared = model.prepare(*two_clusters(), shown)
    weights, index = prepared.data.item_weights, {i: j + 1 for j, i in enumerate(prepared.item_ids)}
    assert weights is not None and weights.dtype == np.float32
    assert weights[index["a0"]] == pytest.approx(0.5)  # (400 / 100) ** -0.5
    assert weights[index["a1"]] == pytest.approx(1.0)
    assert weights[index["a2"]] == pytest.approx(2.0)
    assert weights[index["b0"]] == 1.0  # never logged as shown: neutral
    counted = pd.DataFrame({"item_id": ["a0", "a1", "a2"], "count": [400, 100, 25]})
    assert np.array_equal(_weights(model, counted), weights)


def test_extreme_exposure_is_clipped_and_nothing_changes_without_impressions() -> None:
    model = TwoTower(**SMALL, exposure_debias=1.0)
    counted = pd.DataFrame({"item_id": ["a0", "a1", "a2"], "count": [100_000, 100, 1]})
    weights = _weights(model, counted)
    assert weights is not None and weights.min() == pytest.approx(0.1)
    assert weights.max() == pytest.approx(10.0)
    assert _weights(model, None) is None
    assert _weights(TwoTower(**SMALL, exposure_debias=0.0), counted) is None
    # Impressions of items the model does not know are ignored, not an error.
    assert _weights(model, pd.DataFrame({"item_id": ["zz"]})) is None


def test_bad_impressions_are_refused_naming_what_is_wrong() -> None:
    model = TwoTower(**SMALL)
    with pytest.raises(ValueError, match="item_id column"):
        _weights(model, pd.DataFrame({"item": ["a0"]}))
    with pytest.raises(ValueError, match="must not be negative"):
        _weights(model, pd.DataFrame({"item_id": ["a0"], "count": [-1]}))


def test_an_over_shown_item_loses_rank_when_corrected() -> None:
    # Every user clicks a0 as often as the items of their cluster, but a0 was shown
    # 50 times as often: per impression it is the least attractive. Corrected, the
    # towers (no prior) rank it below the cluster's other items.
    frame, items = two_clusters(per_user=16, seed=1)
    shown = pd.DataFrame({"item_id": ["a0"] * 5000 + [f"a{i}" for i in range(1, 10)] * 100})
    config = {**SMALL, "time_prior": False, "epochs": 8, "validation_fraction": 0.0}
    plain = TwoTower(**config, exposure_debias=0.0).fit(frame, items, impressions=shown)
    fair = TwoTower(**config, exposure_debias=1.0).fit(frame, items, impressions=shown)
    users = [f"u{u}" for u in range(0, 60, 2)]  # cluster a

    def rank_of_a0(model: TwoTower) -> float:
        top = model.recommend(users, k=12, exclude_seen=False)
        ranks = top[top["item_id"] == "a0"].set_index("user_id")["rank"]
        return float(ranks.reindex(users).fillna(13).mean())

    assert rank_of_a0(fair) > rank_of_a0(plain)
