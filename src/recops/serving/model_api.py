"""What the server needs from a model: the real-time half of the two-tower contract.

:class:`ServableModel` is a structural type, so the server depends on this interface
and not on :class:`recops.models.two_tower.TwoTower` itself; any object with these
members can be served (the tests use the real TwoTower).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from recops.models.base import Queries


@runtime_checkable
class ServableModel(Protocol):
    """A model whose item vectors are built in batch and whose queries are encoded live.

    The user→item score is ``score_scale * (user_vec @ item_vec) + item_prior(now)``
    (plus the optional term below);
    item→item, text→item and category→item scores are
    ``score_scale * (query_vec @ item_vec)``.

    Optionally, a model ranks text queries itself (the TwoTower: BM25 over its titles
    fused with the query tower): with ``search_depth(k)`` (how many of the tower's best
    eligible items it needs) and ``fuse_search(text, tower_rows, tower_scores, k, *,
    eligible, exclude)`` (rows and scores, best first), ``/v1/search`` is answered by
    ``fuse_search`` over the index's top ``search_depth(k)``; without, by the index.

    Optionally too, a model adds a sparse term to the user→item score of some items
    (the TwoTower's item-item term for short histories): ``item_knn_scores(rows)``
    gives, for a user's item rows, sorted item rows and the value added to each;
    those items join the candidates.
    """

    item_ids_: np.ndarray
    item_index: dict[str, int]
    categories_: list[str]

    @property
    def dim(self) -> int:
        """Dimension of every vector."""
        ...

    @property
    def score_scale(self) -> float:
        """Multiplier of inner products in every score."""
        ...

    def item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` float32, rows L2-normalised, row order of ``item_ids_``."""
        ...

    def encode_users(self, queries: Queries) -> np.ndarray:
        """``(n, dim)`` float32 user vectors from the queries' recent histories."""
        ...

    def encode_history(
        self, rows: np.ndarray, times: np.ndarray, now: int, user_id: str | None = None
    ) -> np.ndarray:
        """``(dim,)`` float32 vector of one user from item rows (oldest first) and times.

        The per-request path: the same function as ``encode_users`` for one query,
        with the items already resolved to rows of ``item_ids_``.
        """
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` query vectors for free texts."""
        ...

    def encode_categories(self, categories: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` vectors of categories; KeyError naming an unknown one."""
        ...

    def encode_similar(self, item_ids: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` item→item query vectors; KeyError naming an unknown item."""
        ...

    def item_prior(self, now: int) -> np.ndarray:
        """``(n_items,)`` float32 additive time-aware score at unix time ``now``."""
        ...


class ModelLoader(Protocol):
    """Loads a model artifact directory (``TwoTower.load`` by default)."""

    def __call__(self, path: Path) -> ServableModel: ...


def load_two_tower(path: Path) -> ServableModel:
    """The default loader: :meth:`recops.models.two_tower.TwoTower.load`."""
    from recops.models.two_tower import TwoTower

    model: ServableModel = TwoTower.load(path)
    return model
