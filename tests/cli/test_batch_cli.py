"""``recops batch embed`` and ``recops batch recommend``: the same rows as the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from recops.cli import app
from recops.models.two_tower import TwoTower
from tests.serving.conftest import tiny_world

runner = CliRunner()


def test_embed_and_recommend_write_what_the_api_computes(
    trained_artifact: Path, tmp_path: Path
) -> None:
    _, items = tiny_world()
    catalog = tmp_path / "items.parquet"
    items.to_parquet(catalog, index=False)
    args = ["--model", str(trained_artifact), "--catalog", str(catalog), "--out"]
    result = runner.invoke(app, ["batch", "embed", *args, str(tmp_path / "vectors"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == len(items)
    vectors = pd.read_parquet(tmp_path / "vectors")
    model = TwoTower.load(trained_artifact)
    expected = model.item_vectors()[[model.item_index[i] for i in vectors["item_id"]]]
    np.testing.assert_allclose(np.stack(vectors["vector"]), expected, rtol=1e-6)

    users = tmp_path / "users.txt"
    users.write_text("user_id\nu1\nu2\n", encoding="utf-8")
    result = runner.invoke(app, ["batch", "recommend", "--model", str(trained_artifact),
                                 "--users", str(users), "--out", str(tmp_path / "recs"), "-k",
                                 "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recommended for users: 2 in" in result.output
    recs = pd.read_parquet(tmp_path / "recs")
    direct = model.recommend(["u1", "u2"], 3)
    assert recs["item_id"].tolist() == direct["item_id"].tolist()


def test_bad_input_is_one_line_and_exit_code_2(trained_artifact: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["batch", "recommend", "--model", str(trained_artifact),
                                 "--users", str(tmp_path / "none.txt"), "--out",
                                 str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["batch", "embed", "--model", str(tmp_path / "nothing"),
                                 "--catalog", str(tmp_path / "none.csv"), "--out",
                                 str(tmp_path / "v")])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
