"""Small interaction frames shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def random_interactions(seed: int, n_users: int = 40, n_items: int = 30, n_events: int = 600):
    """Random events with duplicate timestamps and repeated (user, item) pairs."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": pd.Series(rng.integers(0, n_users, n_events).astype(str), dtype=object),
            "item_id": pd.Series(
                np.char.add("i", rng.integers(0, n_items, n_events).astype(str)), dtype=object
            ),
            "event": "rating",
            "value": rng.integers(1, 6, n_events).astype(float),
            "timestamp": rng.integers(0, 200, n_events).astype(np.int64) * 10,
        }
    )


@pytest.fixture
def make_interactions():
    """The :func:`random_interactions` factory, for tests that need several frames."""
    return random_interactions


@pytest.fixture
def interactions() -> pd.DataFrame:
    return random_interactions(0)
