"""Batch catalog embedding and recommendation export: in process and on Ray Data, row for row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.models.two_tower import TwoTower
from recops.pipelines.batch import embed_catalog, export_recommendations
from tests.serving.conftest import CATEGORIES, N_ITEMS, tiny_world, trained_artifact  # noqa: F401

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")


def _catalog() -> pd.DataFrame:
    """The model's items, and new ones it never saw (content only)."""
    _, items = tiny_world()
    new = pd.DataFrame(
        {
            "item_id": [f"new{j}" for j in range(30)],
            "title": [f"{CATEGORIES[j % 3]} fresh story {j}" for j in range(30)],
            "categories": [[CATEGORIES[j % 3]] for j in range(30)],
            "publish_time": pd.array([1_700_100_000 + j for j in range(30)], dtype="Int64"),
        }
    )
    return pd.concat([items, new], ignore_index=True)


def _sorted(folder: Path, by: list[str]) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values(by).reset_index(drop=True)


def test_embedding_in_process_gives_trained_and_content_vectors(
    trained_artifact: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = TwoTower.load(trained_artifact)
    catalog = _catalog()
    result = embed_catalog(trained_artifact, catalog, tmp_path / "vectors", batch_size=16)
    assert (result.rows, result.inputs, result.workers) == (N_ITEMS + 30, N_ITEMS + 30, None)
    assert len(list((tmp_path / "vectors").glob("part-*.parquet"))) == -(-(N_ITEMS + 30) // 16)
    frame = pd.read_parquet(tmp_path / "vectors")
    assert frame["item_id"].tolist() == catalog["item_id"].tolist()
    vectors = np.stack(frame["vector"].to_numpy())
    known = model.item_vectors()[[model.item_index[f"i{j}"] for j in range(N_ITEMS)]]
    np.testing.assert_allclose(vectors[:N_ITEMS], known, rtol=1e-6)
    grown, rows = model.with_items(catalog.iloc[N_ITEMS:])
    np.testing.assert_allclose(vectors[N_ITEMS:], grown.item_vectors()[rows], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_ray_data_gives_the_same_rows(
    local_ray: None,
    trained_artifact: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    catalog = _catalog()
    here = embed_catalog(trained_artifact, catalog, tmp_path / "here", batch_size=16)
    there = embed_catalog(trained_artifact, catalog, tmp_path / "ray", batch_size=16, workers=2)
    assert there.rows == here.rows and there.workers == 2
    a, b = _sorted(tmp_path / "here", ["item_id"]), _sorted(tmp_path / "ray", ["item_id"])
    assert a["item_id"].tolist() == b["item_id"].tolist()
    np.testing.assert_allclose(np.stack(a["vector"]), np.stack(b["vector"]), rtol=1e-5, atol=1e-6)

    users = [f"u{u}" for u in range(40)] + ["stranger"]
    here = export_recommendations(trained_artifact, users, tmp_path / "recs", k=5, batch_size=8)
    there = export_recommendations(
        trained_artifact, users, tmp_path / "recs-ray", k=5, batch_size=8, workers=2
    )
    assert here.rows == there.rows == 41 * 5
    a = _sorted(tmp_path / "recs", ["user_id", "rank"])
    b = _sorted(tmp_path / "recs-ray", ["user_id", "rank"])
    pd.testing.assert_frame_equal(a, b)
    direct = TwoTower.load(trained_artifact).recommend(users[:3], 5)
    assert a[a["user_id"].isin(users[:3])]["item_id"].tolist() == (
        direct.sort_values(["user_id", "rank"])["item_id"].tolist()
    )


def test_bad_arguments_are_refused_with_their_name(
    trained_artifact: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        embed_catalog(trained_artifact, _catalog(), tmp_path / "v", batch_size=0)
    with pytest.raises(ValueError, match="`workers` must be a positive int"):
        export_recommendations(trained_artifact, ["u1"], tmp_path / "r", workers=0)
    with pytest.raises(ValueError, match="item_id column"):
        embed_catalog(trained_artifact, pd.DataFrame({"x": [1]}), tmp_path / "v")
    with pytest.raises(ValueError, match="non-empty sequence"):
        export_recommendations(trained_artifact, [], tmp_path / "r")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        export_recommendations(trained_artifact, ["u1"], tmp_path / "file")
