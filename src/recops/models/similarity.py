"""Item-item similarity from co-occurrence: one computation for every model that uses it.

:class:`~recops.models.baselines.ItemKNN` ranks by it alone; the two-tower adds it
for users with short histories (:mod:`recops.models.two_tower.item_knn`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def shrunk_cosine(
    matrix: sp.csr_matrix, n_neighbors: int, shrink: float, block_size: int = 1024
) -> sp.csr_matrix:
    """Pruned shrunk-cosine similarity of the columns of a binary user–item matrix.

    With :math:`X` the ``(n_users, n_items)`` 0/1 matrix and :math:`c_i` the number of
    users of item :math:`i`, :math:`s_{ij} = (X^\\top X)_{ij} / (\\sqrt{c_i c_j} +
    \\lambda)` (Sarwar et al., 2001; the shrinkage :math:`\\lambda` = ``shrink``
    discounts pairs backed by few users). Each row keeps its ``n_neighbors`` largest
    entries (ties to the lower column); the diagonal is zero. Rows are computed
    ``block_size`` items at a time as sparse products, so memory follows the
    co-occurrences, not ``n_items²``.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_items, n_items)`` float32; row ``i`` holds item ``i``'s neighbours.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    n_items = matrix.shape[1]
    norms = np.sqrt(np.asarray(matrix.sum(axis=0, dtype=np.float64)).ravel())
    by_item = matrix.T.tocsr()
    k = min(n_neighbors, max(n_items - 1, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block_size):
        co = (by_item[start : start + block_size] @ matrix).tocoo()
        r, c = co.row.astype(np.int64) + start, co.col.astype(np.int64)
        v = co.data / (norms[r] * norms[c] + shrink + 1e-12)
        keep = (r != c) & (v > 0)
        r, c, v = r[keep], c[keep], v[keep].astype(np.float32)
        # Each row's entries best first (ties to the lower column), then its first k.
        order = np.lexsort((c, -v, r))
        r, c, v = r[order], c[order], v[order]
        first = np.searchsorted(r, r, side="left")
        top = np.arange(len(r)) - first < k
        rows.append(r[top])
        cols.append(c[top])
        vals.append(v[top])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )
