"""From data frames to the indexed training data: vocabularies, checks, click weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.preparation import catalog_columns, exposure_weights, prepare

from .conftest import HOUR, SMALL, T0


def _interactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u2", "u1", "u1", "u2"],
            "item_id": ["b", "a", "b", "c"],
            "timestamp": [T0 + HOUR, T0, T0 + 2 * HOUR, T0 + 3 * HOUR],
        }
    )


def test_vocabularies_are_sorted_and_include_catalog_only_items() -> None:
    catalog = pd.DataFrame(
        {
            "item_id": ["a", "z"],
            "title": ["Zürich news", None],
            "categories": [["sport"], ["tech", "sport"]],
            "publish_time": [T0 - HOUR, T0 + 9 * HOUR],
        }
    )
    prepared = prepare(TwoTowerConfig(**SMALL), _interactions(), catalog)
    assert list(prepared.item_ids) == ["a", "b", "c", "z"]
    assert list(prepared.user_ids) == ["u1", "u2"]
    assert prepared.categories == ["sport", "tech"]
    assert list(prepared.titles) == ["Zürich news", "", "", ""]
    # Indices are 1-based (0 is padding), events keep their rows' order.
    np.testing.assert_array_equal(prepared.events.items, [2, 1, 2, 3])
    np.testing.assert_array_equal(prepared.events.users, [2, 1, 1, 2])
    assert prepared.data.n_items == 4 and prepared.data.n_users == 2
    assert prepared.data.counts is not None  # the time prior's counts


def test_the_catalog_is_checked_and_read_column_by_column() -> None:
    with pytest.raises(ValueError, match="must have an item_id column"):
        catalog_columns(pd.DataFrame({"title": ["x"]}))
    with pytest.raises(ValueError, match="publish_time"):
        catalog_columns(pd.DataFrame({"item_id": ["a"], "publish_time": [T0 * 1000]}))
    titles, cats, published = catalog_columns(
        pd.DataFrame({"item_id": [1, 2], "categories": [["x"], None]})
    )
    assert titles == {} and cats == {"1": ["x"]} and published == {}
    assert catalog_columns(None) == ({}, {}, {})


def test_bad_interactions_are_refused_naming_the_column() -> None:
    config = TwoTowerConfig(**SMALL)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        prepare(config, [("u1", "a", T0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 rows"):
        prepare(config, _interactions().head(1))
    with pytest.raises(ValueError, match="'item_id' has 1 missing values"):
        prepare(config, _interactions().assign(item_id=["a", None, "b", "c"]))


def test_click_weights_fall_with_impressions_and_leave_unshown_items_neutral() -> None:
    lookup = {"a": 1, "b": 2, "c": 3}
    shown = pd.DataFrame({"item_id": ["a", "b", "zz"], "count": [100.0, 1.0, 5.0]})
    weights = exposure_weights(shown, lookup, eta=0.5)
    assert weights is not None
    # Median count of the shown known items is 50.5: a is over-shown, b under-shown.
    np.testing.assert_allclose(weights[1:], [(100 / 50.5) ** -0.5, (1 / 50.5) ** -0.5, 1.0])
    assert exposure_weights(shown, lookup, eta=0.0) is None
    with pytest.raises(ValueError, match="must not be negative"):
        exposure_weights(shown.assign(count=[-1.0, 1.0, 1.0]), lookup, eta=0.5)
    with pytest.raises(ValueError, match="item_id column"):
        exposure_weights(pd.DataFrame({"item": ["a"]}), lookup, eta=0.5)
