"""A tiny stand-in model for tests of the server's mechanics (not of model quality).

A version directory holds ``fake.json`` (``{"n_items": N, "seed": S}``); the loader
refuses a directory whose JSON says ``"broken": true``, like a corrupted artifact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recops.models.base import Queries


class FakeModel:
    """Random unit item vectors; the user vector is the mean of the history's vectors."""

    def __init__(self, n_items: int, seed: int, dim: int = 8) -> None:
        rng = np.random.default_rng(seed)
        vectors = rng.normal(size=(n_items, dim)).astype(np.float32)
        self._vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.item_ids_ = np.array([f"i{j}" for j in range(n_items)], dtype=object)
        self.item_index = {item: j for j, item in enumerate(self.item_ids_)}
        self.categories_ = ["even", "odd"]
        self.seed = seed

    @property
    def dim(self) -> int:
        return self._vectors.shape[1]

    @property
    def score_scale(self) -> float:
        return 1.0

    def item_vectors(self) -> np.ndarray:
        return self._vectors

    def encode_users(self, queries: Queries) -> np.ndarray:
        out = np.zeros((len(queries), self.dim), dtype=np.float32)
        for row, history in enumerate(queries.histories):
            rows = [self.item_index[i] for i in history if i in self.item_index]
            if rows:
                out[row] = self._vectors[rows].mean(axis=0)
        return out

    def encode_history(
        self, rows: np.ndarray, times: np.ndarray, now: int, user_id: str | None = None
    ) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(self.dim, dtype=np.float32)
        return np.asarray(self._vectors[rows].mean(axis=0), dtype=np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self._vectors[:1], (len(texts), 1))

    def encode_categories(self, categories: Sequence[str]) -> np.ndarray:
        return np.tile(self._vectors[1:2], (len(categories), 1))

    def encode_similar(self, item_ids: Sequence[str]) -> np.ndarray:
        return self._vectors[[self.item_index[i] for i in item_ids]]

    def item_prior(self, now: int) -> np.ndarray:
        return np.zeros(len(self.item_ids_), dtype=np.float32)


def write_fake(path: Path, n_items: int = 50, seed: int = 0, broken: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "fake.json").write_text(
        json.dumps({"n_items": n_items, "seed": seed, "broken": broken})
    )
    return path


def load_fake(path: Path) -> FakeModel:
    spec = json.loads((path / "fake.json").read_text())
    if spec.get("broken"):
        raise ValueError(f"{path / 'fake.json'}: corrupted artifact")
    return FakeModel(spec["n_items"], spec["seed"])
