"""Item-based nearest neighbours with shrunk cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from recops.models.base import Queries, Recommender, top_k, validate_k
from recops.models.baselines._matrix import (
    fit_matrix,
    history_matrix,
    positions,
)
from recops.models.baselines._params import check_float, check_int
from recops.models.similarity import shrunk_cosine

# Users whose history has no neighbour (or no known item) would get all-zero scores;
# a popularity term this small only orders those ties and never beats a neighbour.
TIE_BREAK_WEIGHT = 1e-9


class ItemKNN(Recommender):
    """Item-item collaborative filtering (Sarwar et al., 2001).

    With :math:`X` the binary user–item matrix, :math:`c_i` the number of users of
    item :math:`i` and :math:`\\lambda` the shrinkage, the similarity is
    :math:`s_{ij} = (X^\\top X)_{ij} / (\\sqrt{c_i c_j} + \\lambda)`, kept only for the
    ``n_neighbors`` most similar items of each item. A query with history :math:`H`
    scores item :math:`j` as :math:`\\sum_{i \\in H} s_{ij}`, so new users are served
    from their first events without retraining.

    Parameters
    ----------
    n_neighbors:
        Neighbours kept per item (1..10000).
    shrink:
        Shrinkage :math:`\\lambda \\ge 0` that discounts similarities backed by few users.
    block_size:
        Items per block when computing similarities; bounds memory to
        ``block_size × n_items`` floats.
    """

    def __init__(
        self, n_neighbors: int = 100, shrink: float = 10.0, block_size: int = 1024
    ) -> None:
        self.n_neighbors = check_int("n_neighbors", n_neighbors, 1, 10_000)
        self.shrink = check_float("shrink", shrink, 0.0)
        self.block_size = check_int("block_size", block_size, 1)

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Compute the pruned item-item similarity matrix.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp``; ``items``
        is ignored (it is in the signature for the common ``fit`` contract).
        Returns the fitted model.
        """
        self.item_ids_, self._index, matrix, _ = fit_matrix(interactions, type(self).__name__)
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        self.popularity_ = counts / max(counts.max(), 1.0)
        self.similarity_ = shrunk_cosine(matrix, self.n_neighbors, self.shrink, self.block_size)
        self._remember_training_data(interactions)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        """Sum of similarities to the query's history items, ``(len(queries), n_items)``."""
        history = history_matrix(queries.histories, self._index)
        scores = np.asarray((history @ self.similarity_).todense(), dtype=np.float64)
        return scores + TIE_BREAK_WEIGHT * self.popularity_

    def similar(self, item_ids: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to each item (the item→item task).

        Parameters
        ----------
        item_ids:
            One item per request; an unknown item yields only ``-inf`` scores.
        k:
            Number of neighbours per request.

        Returns
        -------
        tuple of numpy.ndarray
            Item ids and similarities, each of shape ``(len(item_ids), k)``; the query
            item itself is never returned.
        """
        k = validate_k(k)
        cols = positions(self._index, list(item_ids))
        known = cols >= 0
        scores = np.full((len(cols), len(self.item_ids_)), -np.inf)
        rows = np.asarray(self.similarity_[cols[known]].todense(), dtype=np.float64)
        scores[known] = rows + TIE_BREAK_WEIGHT * self.popularity_
        scores[np.flatnonzero(known), cols[known]] = -np.inf
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top
