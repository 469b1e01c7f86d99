"""The item-item term of the two-tower score, for users with short histories.

A new user's first clicks say little to the user tower, which learned from users
with long histories; the items other users took together with those clicks say a
lot (ItemKNN beat the tower on cold users by ~10% NDCG@20 on ML-100K). The term
adds that neighbourhood to the score, weighted down as the history grows:

.. math::

    s(u, j) = w(n)\\,\\sigma\\,\\mathbf u^\\top \\mathbf v_j + p_j(t)
        + \\kappa_0 \\big(1 - \\rho(n)\\big)^2 \\sum_{h \\in H_u} \\operatorname{sim}(h, j),
    \\qquad \\rho(n) = \\min\\Big(\\frac{\\log(1 + n)}{\\log(1 + n_{\\max})}, 1\\Big)

with :math:`H_u` the distinct items among the user's last :data:`SUMMED_HISTORY`
events, :math:`n` the number of known events among their last ``max_history``
(repeats count, as for the tower weight), ``sim`` the pruned shrunk cosine of
co-occurrence (:func:`~recops.models.similarity.shrunk_cosine`) and
:math:`\\kappa_0` chosen on the validation window (0 switches it off), as are the
similarity's neighbours and shrinkage (:func:`similarity_grid`). At :math:`n \\ge
n_{\\max}` the term is zero: a regular's ranking is the towers' and the prior's
alone. The similarity is computed from the training events, so a saved model
recomputes it on load instead of storing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from recops.models.similarity import shrunk_cosine

#: Candidate values of :math:`\\kappa_0` tried on the validation window.
KNN_WEIGHT_GRID: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: Neighbours per item and shrinkages tried there when the configuration leaves them
#: open; the first of each is used without a window. On the offline benchmark's
#: validation split (ML-100K, global temporal, all ratings) ItemKNN scored cold users'
#: NDCG@20 0.458 with (100, 10) and 0.477 with (300, 50), and the two-tower 0.451 and
#: 0.470: the similarity matters more than the term's weight.
KNN_NEIGHBOR_GRID: tuple[int, ...] = (100, 300)
KNN_SHRINK_GRID: tuple[float, ...] = (10.0, 50.0)
#: Most similarity entries (``n_items * neighbours``) a candidate may hold: 8 bytes each,
#: so 800 MB; a larger catalog keeps the grid's smallest neighbour count.
KNN_MAX_ENTRIES = 100_000_000
#: Events at the end of a history whose items' neighbours are summed. It bounds a
#: request's work (at most this many rows of the similarity) whatever the neighbour
#: count; by then the weight has faded to (1 - log 21 / log 51)² ≈ 5% of κ0 for the
#: default ``max_history`` of 50.
SUMMED_HISTORY = 20


def similarity_grid(
    n_items: int, neighbors: int | None, shrink: float | None
) -> list[tuple[int, float]]:
    """The (neighbours, shrinkage) pairs to validate: the configured values, or the grids.

    ``None`` leaves a parameter to the validation window (:data:`KNN_NEIGHBOR_GRID`,
    :data:`KNN_SHRINK_GRID`); neighbour counts whose similarity could exceed
    :data:`KNN_MAX_ENTRIES` entries are left out, the smallest one always kept.
    """
    if neighbors is None:
        fits = [n for n in KNN_NEIGHBOR_GRID if n_items * n <= KNN_MAX_ENTRIES]
        counts = fits or [KNN_NEIGHBOR_GRID[0]]
    else:
        counts = [neighbors]
    shrinks = list(KNN_SHRINK_GRID) if shrink is None else [shrink]
    return [(n, s) for n in counts for s in shrinks]


def knn_weights(n_items: np.ndarray | int, weight: float, max_history: int) -> np.ndarray:
    """:math:`\\kappa_0 (1 - \\rho(n))^2` for histories of ``n_items`` known items."""
    share = np.minimum(np.log1p(n_items) / np.log1p(max_history), 1.0)
    return np.asarray(weight * (1.0 - share) ** 2, dtype=np.float32)


def event_matrix(user_keys: np.ndarray, rows: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Binary ``(n_users, n_items)`` matrix of events (``user_keys`` any ints, ``rows`` 0-based)."""
    _, users = np.unique(user_keys, return_inverse=True)
    ones = np.ones(len(rows), dtype=np.float32)
    matrix = sp.csr_matrix((ones, (users, rows)), shape=(int(users.max(initial=-1)) + 1, n_items))
    matrix.data[:] = 1.0  # repeated (user, item) pairs count once
    return matrix


@dataclass(frozen=True)
class ItemKnnTerm:
    """The fitted term: the similarity of item rows (0-based, as ``item_ids_``) and its weight.

    Parameters
    ----------
    similarity:
        ``(n_items, n_items)`` float32 CSR, row ``i`` item ``i``'s neighbours.
    weight:
        :math:`\\kappa_0`.
    max_history:
        :math:`n_{\\max}` (the model's ``max_history``).
    """

    similarity: sp.csr_matrix
    weight: float
    max_history: int

    @classmethod
    def fit(
        cls,
        user_keys: np.ndarray,
        rows: np.ndarray,
        n_items: int,
        *,
        neighbors: int,
        shrink: float,
        weight: float,
        max_history: int,
    ) -> ItemKnnTerm:
        """The term of events ``(user_keys[e], rows[e])`` over ``n_items`` item rows."""
        matrix = event_matrix(user_keys, rows, n_items)
        similarity = shrunk_cosine(matrix, neighbors, shrink)
        similarity.sort_indices()
        return cls(similarity, float(weight), max_history)

    def weights(self, n_items: np.ndarray | int) -> np.ndarray:
        """The term's weight for histories of ``n_items`` known items."""
        return knn_weights(n_items, self.weight, self.max_history)

    def sums(self, history: np.ndarray) -> np.ndarray:
        """``(n, n_items)`` unweighted :math:`\\sum_h \\operatorname{sim}(h, j)` per history row.

        ``history`` is ``(n, width)`` item *indices* (row + 1), 0 for padding, as the
        user tower reads them (oldest first, right-aligned); only the last
        :data:`SUMMED_HISTORY` slots are summed, and an item repeated there counts once.
        """
        n, n_items = len(history), self.similarity.shape[0]
        history = history[:, -SUMMED_HISTORY:]
        users, slots = np.nonzero(history > 0)
        ones = np.ones(len(users), dtype=np.float32)
        matrix = sp.csr_matrix((ones, (users, history[users, slots] - 1)), shape=(n, n_items))
        matrix.data[:] = 1.0
        return np.asarray((matrix @ self.similarity).todense(), dtype=np.float32)

    def scores(self, history: np.ndarray) -> np.ndarray:
        """``(n, n_items)`` weighted term of each history row (see :meth:`sums`)."""
        weights = self.weights((history > 0).sum(axis=1))
        out = np.zeros((len(history), self.similarity.shape[0]), dtype=np.float32)
        active = np.flatnonzero(weights > 0)
        if len(active):
            out[active] = weights[active, None] * self.sums(history[active])
        return out

    def one(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One user's term from their item rows (oldest first): sorted rows and values.

        The number of the last ``max_history`` rows sets the weight, as in
        :meth:`scores`; each distinct item among the last :data:`SUMMED_HISTORY`
        adds its neighbours once. Empty arrays when the weight is zero: a full
        history costs one comparison.
        """
        if len(rows) == 0 or len(rows) >= self.max_history:
            return _NO_ROWS, _NO_VALUES
        s = self.similarity
        # The weight and the slice are computed in the kernel: a NumPy scalar and two
        # slices cost more here than the rest of the call.
        return _sum_rows(s.indptr, s.indices, s.data, rows, self.weight, self.max_history)

    def grown(self, n_items: int) -> ItemKnnTerm:
        """The same term over ``n_items`` rows; added items have no neighbours yet."""
        s = self.similarity
        extra = n_items - s.shape[0]
        if extra <= 0:
            return self
        indptr = np.concatenate([s.indptr, np.full(extra, s.indptr[-1], dtype=s.indptr.dtype)])
        similarity = sp.csr_matrix((s.data, s.indices, indptr), shape=(n_items, n_items))
        return ItemKnnTerm(similarity, self.weight, self.max_history)


_NO_ROWS = np.empty(0, dtype=np.int64)
_NO_VALUES = np.empty(0, dtype=np.float32)


@njit(cache=True, nogil=True)
def _sum_rows(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    kappa: float,
    max_history: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled; the Python body is not what runs
    # knn_weights of the history's length (fewer than max_history rows), in float64
    # and then float32 as there.
    share = min(math.log1p(rows.shape[0]) / math.log1p(max_history), 1.0)
    weight = np.float32(kappa * (1.0 - share) ** 2)
    if weight <= 0.0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    # Each distinct known row among the last SUMMED_HISTORY once (rows outside the
    # similarity are skipped).
    n_rows = indptr.shape[0] - 1
    ordered = np.sort(rows[max(rows.shape[0] - SUMMED_HISTORY, 0) :])
    distinct = np.empty(ordered.shape[0], dtype=np.int64)
    n_distinct = 0
    for r in ordered:
        if 0 <= r < n_rows and (n_distinct == 0 or distinct[n_distinct - 1] != r):
            distinct[n_distinct] = r
            n_distinct += 1
    # Merge the rows' neighbour lists, each sorted by column (the similarity's
    # indices are sorted), by taking the smallest head column at each step: a
    # column's values are summed in row order, as a stable sort of all of them would
    # (the same float32 sums), for (neighbours x rows) comparisons; sorting all of
    # them took twice the time on the 100k-item benchmark's histories.
    at = np.empty(n_distinct, dtype=np.int64)
    end = np.empty(n_distinct, dtype=np.int64)
    total = 0
    for j in range(n_distinct):
        at[j], end[j] = indptr[distinct[j]], indptr[distinct[j] + 1]
        total += end[j] - at[j]
    out_rows = np.empty(total, dtype=np.int64)
    out_vals = np.empty(total, dtype=np.float32)
    size = 0
    while True:
        first = -1
        for j in range(n_distinct):
            if at[j] < end[j] and (first < 0 or indices[at[j]] < indices[at[first]]):
                first = j
        if first < 0:
            break
        col = indices[at[first]]
        out_rows[size] = col
        out_vals[size] = 0.0
        for j in range(first, n_distinct):  # every row whose head is col, in row order
            if at[j] < end[j] and indices[at[j]] == col:
                out_vals[size] += data[at[j]]
                at[j] += 1
        size += 1
    return out_rows[:size], out_vals[:size] * weight
