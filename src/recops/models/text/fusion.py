"""Reciprocal rank fusion: one ranking from several, by rank alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The constant of Cormack, Clarke & Büttcher (SIGIR 2009), used unchanged.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[np.ndarray], k: int, k_rrf: int = RRF_K
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows of several rankings fused by ``Σ 1 / (k_rrf + rank)``.

    Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) reads ranks
    only (1 = best), so rankings whose scores are on different scales (BM25, a
    scaled cosine) need no calibration or weight. A row absent from a ranking gets
    nothing from it; ties go to the lower row.

    Parameters
    ----------
    rankings:
        Rows (ints), best first; no row twice within one ranking.
    k:
        Rows returned (fewer when the rankings hold fewer distinct rows).
    k_rrf:
        The rank offset: larger values flatten the advantage of the first ranks.

    Returns
    -------
    tuple of numpy.ndarray
        Rows (int64) and fused scores (float64), best first.
    """
    if not any(len(r) for r in rankings):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    rows = np.concatenate([np.asarray(r, dtype=np.int64) for r in rankings])
    gains = np.concatenate([1.0 / (k_rrf + np.arange(1, len(r) + 1)) for r in rankings])
    distinct, where = np.unique(rows, return_inverse=True)
    scores = np.bincount(where, weights=gains, minlength=len(distinct))
    order = np.lexsort((distinct, -scores))[:k]
    return distinct[order].astype(np.int64), scores[order]
