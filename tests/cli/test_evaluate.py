"""``recops evaluate`` on a small dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recops.cli import app
from recops.cli.evaluate import parse_params
from recops.data.schema import Dataset


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 600
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n).astype(str).astype(object),
            "item_id": np.char.add("i", rng.integers(0, 30, n).astype(str)).astype(object),
            "event": "rating",
            "value": 1.0,
            "timestamp": rng.integers(0, 2000, n).astype(np.int64),
        }
    )
    return Dataset(events, name="tiny").save(tmp_path / "tiny")


def test_evaluate_prints_intervals_and_writes_json(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(dataset_dir),
            "--model",
            "itemknn",
            "--param",
            "n_neighbors=5",
            "--k",
            "5",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@5" in result.output
    record = json.loads(out.read_text())
    assert record["model"] == "ItemKNN"
    assert record["split"]["protocol"] == "global_temporal"
    assert 0.0 <= record["all"]["metrics"]["ndcg@5"]["mean"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "--model must be one of"),
        (["--param", "l2"], "NAME=VALUE"),
        (["--model", "ease", "--param", "l2=-1"], "`l2`"),
        (["--protocol", "random"], "--protocol"),
    ],
)
def test_bad_input_exits_with_2(dataset_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(dataset_dir), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_parse_params() -> None:
    assert parse_params(["l2=500", "half_life_days=null", "name=x"]) == {
        "l2": 500,
        "half_life_days": None,
        "name": "x",
    }


def test_exported_lists_are_scored_like_a_fitted_model(dataset_dir: Path, tmp_path: Path) -> None:
    from recops.data.schema import Dataset
    from recops.evaluation import implicit_only, temporal_split
    from recops.models.baselines import ItemKNN

    split = temporal_split(implicit_only(Dataset.load(dataset_dir).interactions))
    fitted = ItemKNN(n_neighbors=5).fit(split.train)
    users = list(split.queries.user_ids)
    lists = tmp_path / "recs.csv"
    fitted.recommend(users, 30, now=split.params["cutoff"]).to_csv(lists, index=False)
    direct = CliRunner().invoke(
        app, ["evaluate", str(dataset_dir), "--model", "itemknn", "--param", "n_neighbors=5"]
    )
    exported = CliRunner().invoke(
        app, ["evaluate", str(dataset_dir), "--recommendations", str(lists)]
    )
    assert direct.exit_code == exported.exit_code == 0, exported.output
    rows = [line for line in direct.output.splitlines() if "ndcg@20" in line]
    # The same numbers in the warm column (cold users' history is not in `recommend`).
    warm = [line.split("│")[3] for line in rows]
    assert warm == [
        line.split("│")[3] for line in exported.output.splitlines() if "ndcg@20" in line
    ]
    missing = CliRunner().invoke(
        app, ["evaluate", str(dataset_dir), "--recommendations", str(tmp_path / "none.csv")]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
