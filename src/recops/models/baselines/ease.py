"""EASE: embarrassingly shallow auto-encoder, a closed-form item-item model."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
import scipy.linalg.lapack as lapack

from recops.models.base import Queries, Recommender
from recops.models.baselines._matrix import (
    fit_matrix,
    history_matrix,
)
from recops.models.baselines._params import check_float, check_int
from recops.models.baselines.itemknn import TIE_BREAK_WEIGHT


class EASE(Recommender):
    """EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

    With :math:`X` the binary user–item matrix and :math:`P = (X^\\top X + \\lambda I)^{-1}`,
    the item-item weights are :math:`B_{ij} = -P_{ij} / P_{jj}` for :math:`i \\ne j`
    and :math:`B_{jj} = 0`; a query with history vector :math:`h` scores
    :math:`h^\\top B`. Memory is :math:`O(m^2)` float32 and time :math:`O(m^3)` for the
    :math:`m` modelled items.

    Parameters
    ----------
    l2:
        L2 regularisation :math:`\\lambda > 0` (typical 50–2000 on MovieLens).
    min_item_users:
        Only items with at least this many users get rows and columns in :math:`B`
        (>= 1). Rarer items are still candidates but score only by the popularity
        tie-break. Raising it cuts the cubic cost on long-tail catalogs: on the
        ml-latest-small temporal split, 3 keeps 4.3k of 7.9k items, fits 3× faster
        and gives the same NDCG@20 (0.358 vs 0.357).
    """

    def __init__(self, l2: float = 500.0, min_item_users: int = 1) -> None:
        self.l2 = check_float("l2", l2, 0.0, low_inclusive=False)
        self.min_item_users = check_int("min_item_users", min_item_users, 1)

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Solve for the item-item weight matrix in closed form.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp``; ``items``
        is ignored (it is in the signature for the common ``fit`` contract).
        Returns the fitted model.
        """
        self.item_ids_, self._index, matrix, _ = fit_matrix(interactions, type(self).__name__)
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        self.popularity_ = counts / max(counts.max(), 1.0)
        self.modelled_ = np.flatnonzero(counts >= self.min_item_users)
        if len(self.modelled_) == 0:
            raise ValueError(
                f"EASE.fit: no item has at least min_item_users={self.min_item_users} users "
                f"(the most popular has {int(counts.max())})"
            )
        sub = matrix[:, self.modelled_]
        gram = np.asarray((sub.T @ sub).todense(), dtype=np.float32)
        gram[np.diag_indices_from(gram)] += self.l2
        self.weights_ = _ease_weights(gram)
        self._remember_training_data(interactions)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        """``h^T B`` for each query's history vector ``h``, ``(len(queries), n_items)``."""
        history = history_matrix(queries.histories, self._index)[:, self.modelled_]
        scores = np.tile(TIE_BREAK_WEIGHT * self.popularity_, (len(queries), 1))
        scores[:, self.modelled_] += np.asarray(history @ self.weights_, dtype=np.float64)
        return scores


def _ease_weights(gram: np.ndarray) -> np.ndarray:
    # Cholesky factor + inverse (LAPACK potrf/potri) instead of a general inverse:
    # half the flops on a symmetric positive-definite matrix, and done in place.
    factor, info = lapack.spotrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Gram matrix is not positive definite (info={info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed (info={info})")
    # potri fills only the upper triangle; in-place updates keep the peak at about
    # three n_items² float32 arrays.
    weights = np.triu(inverse)
    del inverse, factor
    weights += np.triu(weights, 1).T
    weights /= -np.diag(weights).copy()[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights
