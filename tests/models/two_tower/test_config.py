"""Parameter validation: every bad value is refused with a message that names it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recops.models.two_tower import TwoTower, TwoTowerConfig


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"dim": 0}, "dim"),
        ({"temperature": 0.0}, "temperature"),
        ({"batch_size": 1}, "batch_size"),
        ({"item_id_dropout": 1.5}, "item_id_dropout"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"prior_windows": [86_400, -1]}, "positive seconds"),
        ({"task_weights": {"user": 1.0, "ranking": 0.5}}, "unknown task"),
        ({"task_weights": {"user": 1.0, "query": -1.0}}, "must be >= 0"),
        ({"task_weights": {"user": 0.0}}, "user task"),
        ({"dimension": 8}, "dimension"),
        ({"search_mode": "bm25"}, "search_mode"),
        ({"search_mode": None}, "search_mode"),
        ({"validation_metric": "recall@20"}, "validation_metric"),
    ],
)
def test_invalid_parameters_are_refused_by_name(params: dict, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        TwoTower(**params)


def test_config_and_keywords_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either `config` or keyword parameters"):
        TwoTower(config=TwoTowerConfig(), dim=8)


def test_defaults_and_derived_values() -> None:
    config = TwoTowerConfig(temperature=0.1, task_weights={"user": 2.0})
    assert config.score_scale == pytest.approx(10.0)
    assert config.task_weights == {"user": 2.0, "query": 0.0, "category": 0.0, "similar": 0.0}
    assert TwoTower(dim=8).get_params()["dim"] == 8
    assert list(TwoTowerConfig(prior_windows=[7, 3, 3]).prior_windows) == [3, 7]


def test_search_mode_is_lexical_first_unless_chosen() -> None:
    assert TwoTowerConfig().search_mode == "lexical_first"
    for mode in ("lexical_first", "hybrid", "tower", "lexical"):
        assert TwoTower(search_mode=mode).get_params()["search_mode"] == mode
    with pytest.raises(ValidationError, match="'lexical_first', 'hybrid', 'tower' or 'lexical'"):
        TwoTowerConfig(search_mode="Hybrid")
