"""Evaluate a fitted recommender on a :class:`~recops.evaluation.splits.Split`.

Every model ranks the same candidates: at a query's ``now``, the split's items known
by then (``Split.candidate_mask``), minus the user's history. Items a model does not
know are simply never in its lists, so a model that cannot rank new items scores
zero on them. Users are reported in slices (:data:`GROUPS`):

* ``warm``: users with training history; ``cold``: users first seen in the test
  period, their first events given as history;
* ``new_items``: users with at least one new-item target, scored against their
  new-item targets only (same lists);
* ``all``: every evaluated user against all their targets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, USER_ID
from recops.evaluation.bootstrap import Interval, bootstrap_ci
from recops.evaluation.metrics import catalog_coverage, hit_matrix, per_user_metrics
from recops.evaluation.splits import Split
from recops.models.base import Recommender, top_k, validate_k
from recops.models.baselines._params import check_int

GROUPS = ("all", "warm", "cold", "new_items")


@dataclass(frozen=True)
class EvaluationResult:
    """Per-user metrics of one model on one split, with bootstrap summaries.

    Parameters
    ----------
    model:
        A display name.
    ks:
        The cut-offs evaluated.
    user_ids:
        The evaluated users, aligned with every per-user array.
    is_cold:
        Whether each user was absent from training.
    per_user:
        ``"<metric>@<k>"`` → per-user values (``recall``, ``ndcg``, ``hit_rate``, ``mrr``).
    per_user_new:
        The same metrics against each user's new-item targets only; NaN for users
        without one (empty when the split has no new-item target).
    recommended:
        The top-``max(ks)`` item ids per user (``None`` for empty slots).
    n_candidates:
        Number of items the model could recommend (the coverage denominator).
    predict_seconds:
        Wall time spent scoring and ranking.
    n_boot, level, seed:
        Bootstrap settings used by :meth:`summary`.
    """

    model: str
    ks: tuple[int, ...]
    user_ids: np.ndarray
    is_cold: np.ndarray
    per_user: dict[str, np.ndarray]
    recommended: np.ndarray
    n_candidates: int
    predict_seconds: float
    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    per_user_new: dict[str, np.ndarray] = field(default_factory=dict)

    def _mask(self, group: str) -> np.ndarray:
        if group not in GROUPS:
            raise ValueError(f"`group` must be one of {GROUPS} (got {group!r})")
        if group == "all":
            return np.ones(len(self.user_ids), dtype=bool)
        if group == "new_items":
            if not self.per_user_new:
                return np.zeros(len(self.user_ids), dtype=bool)
            return ~np.isnan(next(iter(self.per_user_new.values())))
        return self.is_cold if group == "cold" else ~self.is_cold

    def values(self, metric: str, group: str = "all") -> np.ndarray:
        """Per-user values of ``metric`` over the users of ``group``."""
        if metric not in self.per_user:
            raise KeyError(f"unknown metric {metric!r}; known: {sorted(self.per_user)}")
        source = self.per_user_new if group == "new_items" else self.per_user
        mask = self._mask(group)
        return source[metric][mask] if mask.any() else np.array([], dtype=np.float64)

    def n_users(self, group: str = "all") -> int:
        """Number of evaluated users in ``group`` (``"all"``, ``"warm"``, ``"cold"``)."""
        return int(self._mask(group).sum())

    def mean(self, metric: str, group: str = "all") -> float:
        """Mean of a per-user metric (e.g. ``"ndcg@20"``) over a group; NaN if empty."""
        values = self.values(metric, group)
        return float(values.mean()) if len(values) else float("nan")

    def coverage(self, k: int, group: str = "all") -> float:
        """Catalog coverage@k of the group's lists; NaN if the group is empty."""
        lists = self.recommended[self._mask(group)]
        return catalog_coverage(lists, self.n_candidates, k) if len(lists) else float("nan")

    def summary(self, group: str = "all") -> dict[str, Interval]:
        """Mean and bootstrap interval of every metric over a group of users."""
        if not self._mask(group).any():
            return {}
        return {
            name: bootstrap_ci(
                self.values(name, group), n_boot=self.n_boot, level=self.level, seed=self.seed
            )
            for name in self.per_user
        }

    def to_dict(self) -> dict[str, Any]:
        """Summaries for every slice of :data:`GROUPS`, ready for JSON."""
        out: dict[str, Any] = {"model": self.model, "predict_seconds": self.predict_seconds}
        for group in GROUPS:
            out[group] = {
                "users": self.n_users(group),
                "metrics": {m: iv.to_dict() for m, iv in self.summary(group).items()},
                "coverage": {f"coverage@{k}": self.coverage(k, group) for k in self.ks},
            }
        return out


def _shared_columns(item_ids: np.ndarray, split: Split) -> np.ndarray:
    """Column of each of a model's items among the split's candidates (-1: not one)."""
    index = pd.Index(split.candidates.astype(str))
    return np.asarray(index.get_indexer(np.asarray(item_ids).astype(str)), dtype=np.int64)


def recommend_split(
    model: Recommender, split: Split, k: int, *, batch_size: int = 512
) -> np.ndarray:
    """Top-``k`` item ids for every query of ``split`` over the shared candidates.

    Items the model scores but that are not candidates at the query's ``now``
    (unknown to the split, or published later) and items in the history are
    excluded. Scoring runs in batches so the dense score matrix stays at
    ``batch_size × n_items`` floats. Slots without a recommendable item are ``None``.
    """
    k = validate_k(k)
    batch_size = check_int("batch_size", batch_size, 1)
    item_ids = np.asarray(model.item_ids_, dtype=object)
    columns = _shared_columns(item_ids, split)
    is_candidate = columns >= 0
    known_since = np.full(len(item_ids), np.iinfo(np.int64).max, dtype=np.int64)
    known_since[is_candidate] = split.known_since[columns[is_candidate]]
    position = {item: j for j, item in enumerate(item_ids)}
    out = np.empty((len(split), min(k, len(item_ids))), dtype=object)
    for start in range(0, len(split), batch_size):
        stop = min(start + batch_size, len(split))
        queries = split.queries.rows(start, stop)
        scores = np.array(model.score(queries), dtype=np.float64)
        now = np.asarray(queries.now, dtype=np.int64)
        scores[known_since[None, :] >= now[:, None]] = -np.inf
        for row, hist in enumerate(queries.histories):
            scores[row, [position[i] for i in hist if i in position]] = -np.inf
        idx, top = top_k(scores, out.shape[1])
        ids = item_ids[idx]
        ids[np.isneginf(top)] = None
        out[start:stop] = ids
    return out


def _pad(recommended: np.ndarray, k: int) -> np.ndarray:
    if recommended.shape[1] >= k:
        return recommended
    # A catalog smaller than K: missing ranks are simply misses.
    pad = np.full((recommended.shape[0], k - recommended.shape[1]), None, dtype=object)
    return np.hstack([recommended, pad])


def score_lists(
    recommended: np.ndarray,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    name: str,
    predict_seconds: float = 0.0,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> EvaluationResult:
    """Score ranked lists (one row per query of ``split``, best first) under the protocol.

    The lists must already hold only shared candidates (as :func:`recommend_split`
    and :func:`score_recommendations` make them).
    """
    ks = tuple(sorted({validate_k(k) for k in ks}))
    if not ks:
        raise ValueError("`ks` must name at least one cut-off (got an empty sequence)")
    recommended = _pad(np.asarray(recommended, dtype=object), max(ks))
    hits = hit_matrix(recommended, split.targets)
    n_targets = np.fromiter((len(t) for t in split.targets), dtype=np.int64, count=len(split))
    per_user_new: dict[str, np.ndarray] = {}
    new_targets = [split.new_item_targets(i) for i in range(len(split))]
    has_new = np.array([len(t) > 0 for t in new_targets], dtype=bool)
    if has_new.any():
        rows = np.flatnonzero(has_new)
        new_hits = hit_matrix(recommended[rows], [new_targets[i] for i in rows])
        n_new = np.array([len(new_targets[i]) for i in rows], dtype=np.int64)
        for metric, values in per_user_metrics(new_hits, n_new, ks).items():
            full = np.full(len(split), np.nan)
            full[rows] = values
            per_user_new[metric] = full
    return EvaluationResult(
        model=name,
        ks=ks,
        user_ids=np.asarray(list(split.queries.user_ids), dtype=object),
        is_cold=np.asarray(split.is_cold, dtype=bool),
        per_user=per_user_metrics(hits, n_targets, ks),
        recommended=recommended,
        n_candidates=max(split.n_candidates, 1),
        predict_seconds=predict_seconds,
        n_boot=n_boot,
        level=level,
        seed=seed,
        per_user_new=per_user_new,
    )


def evaluate(
    model: Recommender,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    name: str | None = None,
    batch_size: int = 512,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> EvaluationResult:
    """Rank every evaluated user's candidates with a fitted model and score the lists.

    Parameters
    ----------
    model:
        A fitted :class:`~recops.models.base.Recommender` (fitted on ``split.train``).
    split:
        Queries, targets and the shared candidates.
    ks:
        Cut-offs, e.g. ``(10, 20)``.
    name:
        Display name; defaults to the model's class name.
    batch_size:
        Queries scored at once.
    n_boot, level, seed:
        Bootstrap settings for the summaries.

    Returns
    -------
    EvaluationResult
    """
    ks = tuple(sorted({validate_k(k) for k in ks}))
    if not ks:
        raise ValueError("`ks` must name at least one cut-off (got an empty sequence)")
    if len(split) == 0:
        raise ValueError("evaluate: the split has no evaluated users")
    started = time.perf_counter()
    recommended = recommend_split(model, split, max(ks), batch_size=batch_size)
    elapsed = time.perf_counter() - started
    return score_lists(
        recommended,
        split,
        ks,
        name=name or type(model).__name__,
        predict_seconds=elapsed,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


def score_recommendations(
    recommendations: pd.DataFrame,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    name: str = "recommendations",
    n_boot: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Score exported lists (``user_id, rank, item_id``, as ``recops recommend`` writes).

    Each user's list is cut to the shared candidates at their ``now`` and their
    history removed, exactly as :func:`evaluate` ranks, so ``recops train`` then
    ``recops recommend -k 100`` reproduces the benchmark's numbers for the same
    split (when the exported lists are long enough to hold ``max(ks)`` candidates).
    """
    missing = [c for c in (USER_ID, ITEM_ID, "rank") if c not in recommendations.columns]
    if missing:
        raise ValueError(
            f"score_recommendations: the lists lack column(s) {missing} "
            f"(has {list(recommendations.columns)})"
        )
    ks = tuple(sorted({validate_k(k) for k in ks}))
    k = max(ks)
    known = dict(zip(split.candidates.astype(str), split.known_since, strict=True))
    ordered = recommendations.sort_values([USER_ID, "rank"], kind="stable")
    lists = {
        str(u): g[ITEM_ID].astype(str).tolist() for u, g in ordered.groupby(USER_ID, sort=False)
    }
    out = np.full((len(split), k), None, dtype=object)
    for row, user in enumerate(split.queries.user_ids):
        now = int(split.queries.now[row])
        seen = set(np.asarray(split.queries.histories[row]).astype(str))
        picked = [i for i in lists.get(str(user), []) if known.get(i, now) < now and i not in seen][
            :k
        ]
        out[row, : len(picked)] = picked
    return score_lists(out, split, ks, name=name, n_boot=n_boot, seed=seed)
