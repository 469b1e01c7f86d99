"""The contract every recommender in recops follows (two-tower and baselines alike).

A recommender is fitted on interactions (and, optionally, the catalog) and then
*scores* a batch of :class:`Queries`. A query is what a real-time system knows at
request time: who the user is (maybe nobody we trained on), the items they
interacted with most recently and when, and the current time. Models that ignore
some of it (popularity ignores the user; EASE ignores the time) simply do.

``recommend`` is built on ``score`` once, here, so that exclusion of seen items and
the top-k cut behave the same for every model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID


@dataclass(frozen=True)
class Queries:
    """A batch of recommendation requests.

    Parameters
    ----------
    user_ids:
        One id per query; may name users the model never saw.
    histories:
        Per query, the item ids the user interacted with, oldest first.
    history_times:
        Per query, the unix-second timestamps of ``histories`` (same lengths).
    now:
        Per query, the unix-second time of the request. Time-aware models must not
        use any training interaction later than this.
    """

    user_ids: Sequence[str]
    histories: Sequence[np.ndarray]
    history_times: Sequence[np.ndarray]
    now: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.user_ids)
        if len(self.histories) != n or len(self.history_times) != n or len(self.now) != n:
            raise ValueError(
                "Queries: user_ids, histories, history_times and now must have the same length "
                f"(got {n}, {len(self.histories)}, {len(self.history_times)}, {len(self.now)})"
            )
        for i, (h, t) in enumerate(zip(self.histories, self.history_times, strict=True)):
            if len(h) != len(t):
                raise ValueError(
                    f"Queries: histories[{i}] has {len(h)} items but history_times[{i}] "
                    f"has {len(t)}"
                )

    def __len__(self) -> int:
        return len(self.user_ids)

    def rows(self, start: int, stop: int) -> Queries:
        """The queries ``start`` to ``stop`` (a batch of the same requests)."""
        return Queries(
            user_ids=self.user_ids[start:stop],
            histories=self.histories[start:stop],
            history_times=self.history_times[start:stop],
            now=self.now[start:stop],
        )

    @classmethod
    def from_interactions(
        cls,
        interactions: pd.DataFrame,
        user_ids: Sequence[str],
        now: np.ndarray | int | None = None,
    ) -> Queries:
        """Build queries whose history is each user's events in ``interactions``.

        ``now`` defaults to one second after the latest event in ``interactions``.
        """
        ordered = interactions.sort_values(TIMESTAMP, kind="stable")
        grouped = {
            u: (g[ITEM_ID].to_numpy(dtype=object), g[TIMESTAMP].to_numpy(dtype=np.int64))
            for u, g in ordered.groupby(USER_ID, sort=False)
        }
        empty = (np.array([], dtype=object), np.array([], dtype=np.int64))
        hist = [grouped.get(u, empty) for u in user_ids]
        if now is None:
            now = int(interactions[TIMESTAMP].max()) + 1 if len(interactions) else 0
        now_arr = np.broadcast_to(np.asarray(now, dtype=np.int64), (len(user_ids),)).copy()
        return cls(
            user_ids=list(user_ids),
            histories=[h for h, _ in hist],
            history_times=[t for _, t in hist],
            now=now_arr,
        )


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` highest scores in each row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


def validate_k(k: object) -> int:
    """Return ``k`` if it is a positive int, else raise a ValueError that says so."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) < 1:
        raise ValueError(f"`k` must be a positive int (got {k!r})")
    return int(k)


class Recommender(ABC):
    """Base class: ``fit`` on interactions, ``score`` queries, ``recommend`` top-k.

    After ``fit``, ``item_ids_`` holds the items the model can recommend, in the
    column order of :meth:`score`.
    """

    item_ids_: np.ndarray
    _train: pd.DataFrame

    @abstractmethod
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Learn from interactions (and the catalog, when the model uses it)."""

    @abstractmethod
    def score(self, queries: Queries) -> np.ndarray:
        """Scores of shape ``(len(queries), len(item_ids_))``; higher is better."""

    def _remember_training_data(self, interactions: pd.DataFrame) -> None:
        # Kept so that ``recommend(user_ids)`` can rebuild a known user's history.
        self._train = interactions[[USER_ID, ITEM_ID, TIMESTAMP]]

    def recommend_queries(
        self, queries: Queries, k: int = 10, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids and scores per query, shape ``(len(queries), k)``."""
        k = validate_k(k)
        scores = np.asarray(self.score(queries), dtype=np.float64)
        if exclude_seen:
            position = {item: j for j, item in enumerate(self.item_ids_)}
            for row, hist in enumerate(queries.histories):
                cols = [position[i] for i in hist if i in position]
                scores[row, cols] = -np.inf
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        now: int | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` recommendations for users, from their training history.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_id, rank, item_id, score``; rank starts at 1.
        """
        queries = Queries.from_interactions(self._train, user_ids, now=now)
        ids, scores = self.recommend_queries(queries, k, exclude_seen=exclude_seen)
        n, kk = ids.shape
        return pd.DataFrame(
            {
                USER_ID: np.repeat(np.asarray(list(user_ids), dtype=object), kk),
                "rank": np.tile(np.arange(1, kk + 1), n),
                ITEM_ID: ids.ravel(),
                "score": scores.ravel(),
            }
        ).query("score > -inf")
