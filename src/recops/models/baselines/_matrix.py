"""Sparse user–item matrices shared by the baselines.

Every baseline indexes items by position in ``item_ids_`` and turns a batch of
query histories into a sparse ``(n_queries, n_items)`` matrix; doing it once here
keeps the id handling (unknown items are ignored, duplicates count once) identical
across models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID

REQUIRED_COLUMNS: tuple[str, ...] = (USER_ID, ITEM_ID, TIMESTAMP)


def check_interactions(interactions: pd.DataFrame, model: str) -> pd.DataFrame:
    """Return ``interactions`` if it has the columns and rows a baseline needs."""
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(
            f"{model}.fit: `interactions` must be a pandas DataFrame "
            f"(got {type(interactions).__name__})"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"{model}.fit: `interactions` lacks column(s) {missing} "
            f"(has {list(interactions.columns)})"
        )
    if len(interactions) == 0:
        raise ValueError(f"{model}.fit: `interactions` is empty; nothing to learn from")
    return interactions


def item_index(item_ids: np.ndarray) -> pd.Index:
    """A pandas index that maps item ids to column positions (fast ``get_indexer``)."""
    return pd.Index(np.asarray(item_ids, dtype=object))


def positions(index: pd.Index, ids: np.ndarray | Sequence[str]) -> np.ndarray:
    """Column position of each id in ``index``; -1 for ids the index does not hold."""
    return np.asarray(index.get_indexer(pd.Index(np.asarray(ids, dtype=object))), dtype=np.int64)


def user_item_matrix(
    interactions: pd.DataFrame, items: pd.Index
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary ``(n_users, n_items)`` CSR matrix and the user ids of its rows.

    Repeated (user, item) events count once: the baselines model *whether* a user
    interacted, which is what implicit-feedback evaluation asks about.
    """
    users, user_codes = np.unique(interactions[USER_ID].to_numpy(dtype=object), return_inverse=True)
    cols = positions(items, interactions[ITEM_ID].to_numpy(dtype=object))
    return _binary(user_codes, cols, (len(users), len(items))), users


def history_matrix(histories: Sequence[np.ndarray], items: pd.Index) -> sp.csr_matrix:
    """Binary ``(n_queries, n_items)`` CSR matrix of query histories.

    Items the model never saw are dropped; an item repeated in a history counts once.
    """
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    flat = (
        np.concatenate([np.asarray(h, dtype=object) for h in histories])
        if lengths.sum()
        else np.array([], dtype=object)
    )
    rows = np.repeat(np.arange(len(histories)), lengths)
    return _binary(rows, positions(items, flat), (len(histories), len(items)))


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 CSR matrix with ones at (rows, cols); pairs with col -1 are skipped."""
    keep = cols >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])), shape=shape
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def fit_matrix(
    interactions: pd.DataFrame, model: str
) -> tuple[np.ndarray, pd.Index, sp.csr_matrix, np.ndarray]:
    """The common start of a matrix baseline's ``fit``.

    Returns
    -------
    item_ids : numpy.ndarray
        The distinct training items, sorted (the columns).
    index : pandas.Index
        Item id → column.
    matrix : scipy.sparse.csr_matrix
        The binary ``(n_users, n_items)`` matrix.
    user_ids : numpy.ndarray
        The user of each row.
    """
    check_interactions(interactions, model)
    item_ids = np.unique(interactions[ITEM_ID].to_numpy(dtype=object))
    index = item_index(item_ids)
    matrix, users = user_item_matrix(interactions, index)
    return item_ids, index, matrix, users
