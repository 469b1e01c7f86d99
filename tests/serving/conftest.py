"""Shared fixtures: a real tiny TwoTower trained once, saved into a model repository."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

N_ITEMS = 60
N_USERS = 40
CATEGORIES = ("sports", "tech", "politics")
START = 1_700_000_000
ADMIN_TOKEN = "test-token"


def tiny_world(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users who each click items of one category (two-cluster-like structure)."""
    rng = np.random.default_rng(seed)
    item_cat = np.arange(N_ITEMS) % len(CATEGORIES)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(N_ITEMS)],
            "title": [f"{CATEGORIES[c]} story number {j}" for j, c in enumerate(item_cat)],
            "categories": [[CATEGORIES[c]] for c in item_cat],
            "publish_time": pd.array(START + 600 * np.arange(N_ITEMS), dtype="Int64"),
        }
    )
    rows = []
    for u in range(N_USERS):
        own = np.flatnonzero(item_cat == u % len(CATEGORIES))
        for t in range(15):
            rows.append((f"u{u}", f"i{rng.choice(own)}", START + 3600 * 24 + 60 * (u * 15 + t)))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    interactions["timestamp"] = interactions["timestamp"].astype(np.int64)
    return interactions, items


def _train(out: Path, seed: int, epochs: int, item_knn_weight: float | None = None) -> Path:
    import torch

    from recops.models.two_tower import TwoTower

    torch.set_num_threads(1)
    interactions, items = tiny_world()
    model = TwoTower(
        dim=16,
        hidden=32,
        batch_size=64,
        uniform_negatives=16,
        num_threads=1,
        text_buckets=256,
        seed=seed,
        epochs=epochs,
        item_knn_weight=item_knn_weight,
    ).fit(interactions, items)
    model.save(out)
    return out


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TwoTower fitted for a couple of epochs on :func:`tiny_world`, saved once."""
    return _train(tmp_path_factory.mktemp("artifact") / "model", seed=0, epochs=2)


@pytest.fixture(scope="session")
def second_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another version: a different seed, so its recommendations differ."""
    return _train(tmp_path_factory.mktemp("artifact") / "model", seed=1, epochs=1)


def make_repository(root: Path, artifact: Path, versions: tuple[str, ...] = ("1",)) -> Path:
    """Copy ``artifact`` into ``root/news/<version>/`` for each version."""
    for version in versions:
        shutil.copytree(artifact, root / "news" / version)
    return root


@pytest.fixture()
def settings(tmp_path: Path, trained_artifact: Path) -> ServerSettings:
    repo = make_repository(tmp_path / "models", trained_artifact)
    return ServerSettings(
        model_repository=repo,
        event_log_path=tmp_path / "events.sqlite3",
        admin_token=ADMIN_TOKEN,
        benchmark_routes=True,
        replay=True,  # the tiny world's time is 2023, not the server clock
    )


@pytest.fixture()
def client(settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
