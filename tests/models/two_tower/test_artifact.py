"""The model directory: exact round trip, no pickle, corruption and mismatch refused."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from recops.models.base import Queries
from recops.models.two_tower import TwoTower
from recops.models.two_tower.artifact import ArtifactError
from tests.models.two_tower.conftest import T0, in_mode


@pytest.fixture(scope="module")
def saved(fitted: TwoTower, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("artifact") / "model")


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_round_trip_gives_identical_scores_everywhere(
    fitted: TwoTower, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading a model must never unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = TwoTower.load(saved)
    assert {f.suffix for f in saved.iterdir()} == {".json", ".safetensors"}
    queries = Queries(
        user_ids=["u0", "stranger"],
        histories=[np.array(["a1", "a2"], dtype=object), np.array(["b3"], dtype=object)],
        history_times=[np.array([T0, T0 + 60]), np.array([T0 + 5])],
        now=np.array([T0 + 3600, T0 + 90 * 86_400]),
    )
    np.testing.assert_array_equal(loaded.score(queries), fitted.score(queries))
    np.testing.assert_array_equal(loaded.item_vectors(), fitted.item_vectors())
    np.testing.assert_array_equal(loaded.item_ids_, fitted.item_ids_)
    assert loaded.item_index == fitted.item_index and loaded.categories_ == fitted.categories_
    assert loaded.dim == fitted.dim and loaded.score_scale == fitted.score_scale
    for method, arg in (("similar", ["a1"]), ("search", ["beta"]), ("by_category", ["CatA"])):
        ids, scores = getattr(loaded, method)(arg, k=4)
        ref_ids, ref_scores = getattr(fitted, method)(arg, k=4)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    recs = loaded.recommend(["u0", "u1"], k=3)
    assert recs.equals(fitted.recommend(["u0", "u1"], k=3))


def test_config_lists_sha256_of_every_file(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    assert config["format"] == "recops.two_tower" and config["format_version"] == 2
    files = {f.name for f in saved.iterdir()} - {"config.json"}
    assert set(config["sha256"]) == files
    assert config["score"]["score_scale"] == pytest.approx(1 / config["model"]["temperature"])


def test_corrupted_file_is_refused_naming_it(saved: Path, tmp_path: Path) -> None:
    broken = _copy(saved, tmp_path / "broken")
    data = bytearray((broken / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (broken / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: sha256 mismatch"):
        TwoTower.load(broken)


def test_missing_file_is_refused(saved: Path, tmp_path: Path) -> None:
    broken = _copy(saved, tmp_path / "missing")
    (broken / "vocab.json").unlink()
    with pytest.raises(ArtifactError, match=r"vocab\.json: missing"):
        TwoTower.load(broken)


def test_config_that_does_not_match_the_weights_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = _copy(saved, tmp_path / "mismatch")
    config = json.loads((bad / "config.json").read_text())
    config["model"]["dim"] = 32  # the tensors were trained with dim 16
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"item_vectors\.safetensors: expected item_vectors"):
        TwoTower.load(bad)
    config["model"]["dim"] = 16
    config["model"]["hidden"] = 64
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: does not match the config"):
        TwoTower.load(bad)
    config["model"]["hidden"] = 32
    config["sizes"]["n_items"] += 1
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"vocab\.json: n_items is 22"):
        TwoTower.load(bad)


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a model directory"):
        TwoTower.load(tmp_path / "nothing")
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ArtifactError, match=r"expected format 'recops\.two_tower'"):
        TwoTower.load(tmp_path)
    assert issubclass(ArtifactError, ValueError)


def _edit_vocab(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Change ``vocab.json`` in place and record its new sha256, as a writer would."""
    vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    edit(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    config = json.loads((path / "config.json").read_text())
    config["sha256"]["vocab.json"] = hashlib.sha256((path / "vocab.json").read_bytes()).hexdigest()
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_a_model_with_another_tokenizer_is_refused(saved: Path, tmp_path: Path) -> None:
    def older(vocab: dict[str, Any]) -> None:
        vocab["text"]["tokenizer"] = "lowercase [0-9a-z]+ words"  # before issue 11

    old = _edit_vocab(_copy(saved, tmp_path / "old-tokenizer"), older)
    with pytest.raises(ArtifactError, match="retrain the model"):
        TwoTower.load(old)


def test_search_round_trips_with_the_titles_of_added_items(
    fitted: TwoTower, tmp_path: Path
) -> None:
    grown, _ = fitted.with_items(
        pd.DataFrame({"item_id": ["odd"], "title": ["Zürich zyzzyva"], "categories": [["CatB"]]})
    )
    loaded = TwoTower.load(grown.save(tmp_path / "grown"))
    assert loaded.titles_.tolist() == grown.titles_.tolist()
    assert loaded.config.search_mode == "lexical_first"
    for query in (["zyzzyva"], ["ZURICH", "alpha beach"], ["nothing at all"]):
        ids, scores = loaded.search(query, k=6, now=T0 + 3600)
        ref_ids, ref_scores = grown.search(query, k=6, now=T0 + 3600)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    assert loaded.search(["zyzzyva"], k=1)[0][0, 0] == "odd"


def test_a_model_saved_without_titles_loads_and_searches_by_its_tower(
    saved: Path, tmp_path: Path, fitted: TwoTower
) -> None:
    """An artifact written before titles were kept (the key is new, the format is not)."""

    def without_titles(vocab: dict[str, Any]) -> None:
        del vocab["titles"]

    old = TwoTower.load(_edit_vocab(_copy(saved, tmp_path / "no-titles"), without_titles))
    assert set(old.titles_.tolist()) == {""}
    hybrid, _ = old.search(["alpha sunny"], k=8)
    tower, _ = in_mode(fitted, "tower").search(["alpha sunny"], k=8)
    np.testing.assert_array_equal(hybrid, tower)
    with_titles, _ = fitted.search(["alpha sunny"], k=8)
    assert with_titles.tolist() != tower.tolist(), "premise: the titles change the ranking"


def test_titles_that_do_not_fit_the_items_are_refused(saved: Path, tmp_path: Path) -> None:
    def short(vocab: dict[str, Any]) -> None:
        vocab["titles"] = vocab["titles"][:-1]

    bad = _edit_vocab(_copy(saved, tmp_path / "short-titles"), short)
    with pytest.raises(ArtifactError, match=r"vocab\.json: expected 22 titles"):
        TwoTower.load(bad)


def test_saved_files_are_readable_by_other_users(tmp_path) -> None:
    import stat

    from recops.models.two_tower import TwoTower
    from tests.serving.conftest import tiny_world

    interactions, items = tiny_world()
    model = TwoTower(dim=8, hidden=16, epochs=1, batch_size=64, num_threads=1).fit(
        interactions, items
    )
    path = model.save(tmp_path / "m")
    for f in path.iterdir():
        assert f.stat().st_mode & stat.S_IROTH, f"{f.name} is not readable by others"
