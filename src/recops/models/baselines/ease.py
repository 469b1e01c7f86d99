"""EASE: embarrassingly shallow auto-encoder, a closed-form item-item model."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
import scipy.linalg.lapack as lapack

from recops.models.base import Queries, Recommender
from recops.models.baselines._matrix import (
    check_interactions,
    history_matrix,
    item_index,
    user_item_matrix,
)
from recops.models.baselines._params import check_float
from recops.models.baselines.itemknn import TIE_BREAK_WEIGHT


class EASE(Recommender):
    """EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

    With :math:`X` the binary user–item matrix and :math:`P = (X^\\top X + \\lambda I)^{-1}`,
    the item-item weights are :math:`B_{ij} = -P_{ij} / P_{jj}` for :math:`i \\ne j`
    and :math:`B_{jj} = 0`; a query with history vector :math:`h` scores
    :math:`h^\\top B`. Memory is :math:`O(n_{items}^2)` (float32).

    Parameters
    ----------
    l2:
        L2 regularisation :math:`\\lambda > 0` (typical 50–2000 on MovieLens).
    """

    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = check_float("l2", l2, 0.0, low_inclusive=False)

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Solve for the item-item weight matrix in closed form.

        Parameters
        ----------
        interactions:
            Events with ``user_id``, ``item_id`` and ``timestamp``.
        items:
            Ignored; accepted for the common ``fit`` signature.

        Returns
        -------
        EASE
            The fitted model.
        """
        check_interactions(interactions, type(self).__name__)
        self.item_ids_ = np.unique(interactions["item_id"].to_numpy(dtype=object))
        self._index = item_index(self.item_ids_)
        matrix, _ = user_item_matrix(interactions, self._index)
        gram = np.asarray((matrix.T @ matrix).todense(), dtype=np.float32)
        gram[np.diag_indices_from(gram)] += self.l2
        self.weights_ = _ease_weights(gram)
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        self.popularity_ = counts / max(counts.max(), 1.0)
        self._remember_training_data(interactions)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        """``h^T B`` for each query's history vector ``h``, ``(len(queries), n_items)``."""
        history = history_matrix(queries.histories, self._index)
        scores = np.asarray(history @ self.weights_, dtype=np.float64)
        return scores + TIE_BREAK_WEIGHT * self.popularity_


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
