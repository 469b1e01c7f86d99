"""Evaluate a fitted recommender on a :class:`~recops.evaluation.splits.Split`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recops.evaluation.bootstrap import Interval, bootstrap_ci
from recops.evaluation.metrics import catalog_coverage, hit_matrix, per_user_metrics
from recops.evaluation.splits import Split
from recops.models.base import Queries, Recommender, validate_k
from recops.models.baselines._params import check_int

GROUPS = ("all", "warm", "cold")


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

    def _mask(self, group: str) -> np.ndarray:
        if group not in GROUPS:
            raise ValueError(f"`group` must be one of {GROUPS} (got {group!r})")
        if group == "all":
            return np.ones(len(self.user_ids), dtype=bool)
        return self.is_cold if group == "cold" else ~self.is_cold

    def n_users(self, group: str = "all") -> int:
        """Number of evaluated users in ``group`` (``"all"``, ``"warm"``, ``"cold"``)."""
        return int(self._mask(group).sum())

    def mean(self, metric: str, group: str = "all") -> float:
        """Mean of a per-user metric (e.g. ``"ndcg@20"``) over a group; NaN if empty."""
        if metric not in self.per_user:
            raise KeyError(f"unknown metric {metric!r}; known: {sorted(self.per_user)}")
        values = self.per_user[metric][self._mask(group)]
        return float(values.mean()) if len(values) else float("nan")

    def coverage(self, k: int, group: str = "all") -> float:
        """Catalog coverage@k of the group's lists; NaN if the group is empty."""
        lists = self.recommended[self._mask(group)]
        return catalog_coverage(lists, self.n_candidates, k) if len(lists) else float("nan")

    def summary(self, group: str = "all") -> dict[str, Interval]:
        """Mean and bootstrap interval of every metric over a group of users."""
        mask = self._mask(group)
        if not mask.any():
            return {}
        return {
            name: bootstrap_ci(values[mask], n_boot=self.n_boot, level=self.level, seed=self.seed)
            for name, values in self.per_user.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """Summaries for ``all``/``warm``/``cold`` users, ready for JSON."""
        out: dict[str, Any] = {"model": self.model, "predict_seconds": self.predict_seconds}
        for group in GROUPS:
            out[group] = {
                "users": self.n_users(group),
                "metrics": {m: iv.to_dict() for m, iv in self.summary(group).items()},
                "coverage": {f"coverage@{k}": self.coverage(k, group) for k in self.ks},
            }
        return out


def _slice(queries: Queries, start: int, stop: int) -> Queries:
    return Queries(
        user_ids=queries.user_ids[start:stop],
        histories=queries.histories[start:stop],
        history_times=queries.history_times[start:stop],
        now=queries.now[start:stop],
    )


def recommend_split(
    model: Recommender, split: Split, k: int, *, batch_size: int = 512
) -> np.ndarray:
    """Top-``k`` item ids for every query of ``split``, seen items excluded.

    Scoring runs in batches so the dense score matrix stays at
    ``batch_size × n_items`` floats. Slots whose score is ``-inf`` (fewer than ``k``
    recommendable items) are ``None``.
    """
    k = validate_k(k)
    batch_size = check_int("batch_size", batch_size, 1)
    out = np.empty((len(split), min(k, len(model.item_ids_))), dtype=object)
    for start in range(0, len(split), batch_size):
        stop = min(start + batch_size, len(split))
        ids, scores = model.recommend_queries(_slice(split.queries, start, stop), k)
        ids = np.asarray(ids, dtype=object)
        ids[np.isneginf(scores)] = None
        out[start:stop] = ids
    return out


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
    """Rank every evaluated user's items with a fitted model and score the lists.

    Parameters
    ----------
    model:
        A fitted :class:`~recops.models.base.Recommender` (fitted on ``split.train``).
    split:
        Queries and targets.
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
    hits = hit_matrix(recommended, split.targets)
    if hits.shape[1] < max(ks):
        # A catalog smaller than K: missing ranks are simply misses.
        hits = np.pad(hits, ((0, 0), (0, max(ks) - hits.shape[1])))
    n_targets = np.fromiter((len(t) for t in split.targets), dtype=np.int64, count=len(split))
    return EvaluationResult(
        model=name or type(model).__name__,
        ks=ks,
        user_ids=np.asarray(list(split.queries.user_ids), dtype=object),
        is_cold=np.asarray(split.is_cold, dtype=bool),
        per_user=per_user_metrics(hits, n_targets, ks),
        recommended=recommended,
        n_candidates=len(model.item_ids_),
        predict_seconds=elapsed,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
