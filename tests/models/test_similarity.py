"""The shared item-item similarity against its formula computed densely."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recops.models.similarity import shrunk_cosine


def _reference(x: np.ndarray, n_neighbors: int, shrink: float) -> np.ndarray:
    counts = x.sum(axis=0)
    norms = np.sqrt(counts)
    sim = (x.T @ x) / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    sim = sim.astype(np.float32)  # ties are ties in the stored precision
    out = np.zeros_like(sim)
    for i, row in enumerate(sim):
        # best first, ties to the lower column; only positive entries
        order = np.lexsort((np.arange(len(row)), -row))[:n_neighbors]
        order = order[row[order] > 0]
        out[i, order] = row[order]
    return out


def test_equals_the_dense_formula_with_pruning_and_ties() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((40, 25)) < 0.2).astype(np.float64)
    x[:, 3] = x[:, 4]  # identical columns: ties
    for n_neighbors, shrink, block in ((3, 0.0, 4), (10, 5.0, 7), (100, 1.0, 1024)):
        got = shrunk_cosine(sp.csr_matrix(x), n_neighbors, shrink, block).toarray()
        np.testing.assert_allclose(got, _reference(x, n_neighbors, shrink), rtol=1e-6, atol=1e-7)


def test_items_nobody_shares_have_no_neighbours() -> None:
    x = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    sim = shrunk_cosine(x, 5, 0.0)
    assert sim.shape == (3, 3)
    assert sim.nnz == 0
    assert sim.dtype == np.float32
