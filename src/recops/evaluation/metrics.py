"""Top-K ranking metrics, computed per user and vectorised over users.

Every metric takes a boolean *hit matrix* ``hits`` of shape ``(n_users, K)``
(``hits[u, r]``: the item at rank ``r`` of user ``u``'s list is one of their
targets) and the number of targets per user, so one ranking pass serves every
metric and every cut-off ``k <= K``. Relevance is binary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recops.models.base import validate_k


def hit_matrix(recommended: np.ndarray, targets: Sequence[np.ndarray]) -> np.ndarray:
    """Which recommended items are targets.

    Parameters
    ----------
    recommended:
        Item ids, shape ``(n_users, K)``, best first; ``None`` marks an empty slot.
    targets:
        Per user, the target item ids.

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``(n_users, K)``.
    """
    recommended = np.asarray(recommended, dtype=object)
    if recommended.ndim != 2 or recommended.shape[0] != len(targets):
        raise ValueError(
            f"hit_matrix: `recommended` must have shape (n_users={len(targets)}, K) "
            f"(got {recommended.shape})"
        )
    n, k = recommended.shape
    lengths = np.fromiter((len(t) for t in targets), dtype=np.int64, count=n)
    flat_targets = (
        np.concatenate([np.asarray(t, dtype=object) for t in targets])
        if lengths.sum()
        else np.array([], dtype=object)
    )
    codes, _ = pd.factorize(np.concatenate([recommended.ravel(), flat_targets]))
    n_codes = int(codes.max()) + 2
    # Encode (user, item) pairs as one integer so membership is a single np.isin.
    rec_codes = codes[: n * k].reshape(n, k)
    rec_pairs = np.arange(n)[:, None] * n_codes + rec_codes
    target_pairs = np.repeat(np.arange(n), lengths) * n_codes + codes[n * k :]
    return np.isin(rec_pairs, target_pairs) & (rec_codes >= 0)


def _check(hits: np.ndarray, n_targets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = validate_k(k)
    hits = np.asarray(hits, dtype=bool)
    n_targets = np.asarray(n_targets, dtype=np.float64)
    if hits.ndim != 2 or len(n_targets) != hits.shape[0]:
        raise ValueError(
            f"`hits` must be (n_users, K) and `n_targets` (n_users,) "
            f"(got {hits.shape} and {n_targets.shape})"
        )
    if k > hits.shape[1]:
        raise ValueError(f"`k` must be at most the list length {hits.shape[1]} (got {k})")
    if np.any(n_targets < 1):
        raise ValueError("every user needs at least one target (`n_targets` has a 0)")
    return hits[:, :k], n_targets


def recall_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Recall@K per user: hits in the top ``k`` divided by the number of targets."""
    top, n = _check(hits, n_targets, k)
    return np.asarray(top.sum(axis=1) / n, dtype=np.float64)


def hit_rate_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """HitRate@K per user: 1 if any target is in the top ``k``, else 0."""
    top, _ = _check(hits, n_targets, k)
    return np.asarray(top.any(axis=1), dtype=np.float64)


def ndcg_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@K per user with binary relevance.

    :math:`\\mathrm{DCG} = \\sum_{r=1}^{K} \\mathrm{hit}_r / \\log_2(r + 1)`, divided
    by the ideal DCG of :math:`\\min(K, |T_u|)` hits at the top.
    """
    top, n = _check(hits, n_targets, k)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    ideal = np.cumsum(discounts)[np.minimum(n, top.shape[1]).astype(np.int64) - 1]
    return (top * discounts).sum(axis=1) / ideal


def mrr_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """MRR@K per user: 1 / rank of the first hit in the top ``k``, 0 without a hit."""
    top, _ = _check(hits, n_targets, k)
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def catalog_coverage(recommended: np.ndarray, n_candidates: int, k: int) -> float:
    """Distinct items in all top-``k`` lists divided by the number of candidate items.

    ``None`` slots (empty positions) are not counted.
    """
    k = validate_k(k)
    if n_candidates < 1:
        raise ValueError(f"`n_candidates` must be >= 1 (got {n_candidates})")
    top = np.asarray(recommended, dtype=object)[:, :k].ravel()
    distinct = pd.unique(top[pd.notna(top)])
    return len(distinct) / n_candidates


RANKING_METRICS = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
}


def per_user_metrics(
    hits: np.ndarray, n_targets: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Every ranking metric at every ``k``, keyed ``"<metric>@<k>"`` (e.g. ``"ndcg@20"``)."""
    return {
        f"{name}@{k}": metric(hits, n_targets, k)
        for k in ks
        for name, metric in RANKING_METRICS.items()
    }
