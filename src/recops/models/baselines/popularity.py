"""Popularity baselines: all-time, recent-window (time-aware) and within a category.

Popularity is the baseline every personalised model has to beat; on MovieLens a
*recent* popularity is notoriously hard to beat under a temporal split, which is
why :class:`RecentPopular` is time-aware per query rather than fitted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from recops.data.schema import CATEGORIES, ITEM_ID, TIMESTAMP, USER_ID
from recops.models.base import Queries, Recommender, top_k, validate_k
from recops.models.baselines._matrix import check_interactions, item_index, positions
from recops.models.baselines._params import check_float, check_optional_float

SECONDS_PER_DAY = 86_400
# Ties within the window are broken by all-time popularity before ``now``; the
# weight keeps that secondary signal below one event of the primary count.
_TIE_BREAK_WEIGHT = 1e-6


class MostPopular(Recommender):
    """Score every item by the number of distinct users who interacted with it.

    The same ranking is returned for every query; it ignores the user and the time.
    """

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Count distinct users per item in ``interactions``.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp``; ``items``
        is ignored (it is in the signature for the common ``fit`` contract).
        Returns the fitted model.
        """
        check_interactions(interactions, type(self).__name__)
        pairs = interactions[[USER_ID, ITEM_ID]].drop_duplicates()
        counts = pairs[ITEM_ID].value_counts(sort=False).sort_index()
        self.item_ids_ = counts.index.to_numpy(dtype=object)
        self.popularity_ = counts.to_numpy(dtype=np.float64)
        self._remember_training_data(interactions)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        """The popularity of each item, repeated for every query."""
        return np.broadcast_to(self.popularity_, (len(queries), len(self.item_ids_))).copy()


class RecentPopular(Recommender):
    """Popularity over a window that ends at each query's ``now``.

    For a query at time :math:`t`, item :math:`i` scores
    :math:`\\sum_{e \\in E_i,\\; t - w \\le t_e < t} 0.5^{(t - t_e)/h}`,
    the (optionally half-life-decayed) number of training events in the window
    :math:`[t - w, t)`. Only training events strictly before ``now`` count, so a
    query never sees the future even when the training set holds later events (as
    in leave-last-N-out). Ties are broken by all-time popularity before ``now``.

    Parameters
    ----------
    window_days:
        Length :math:`w` of the window in days (> 0).
    half_life_days:
        Half-life :math:`h` of an exponential recency decay in days, or ``None`` for
        a flat count over the window.
    """

    def __init__(self, window_days: float = 7.0, half_life_days: float | None = None) -> None:
        self.window_days = check_float("window_days", window_days, 0.0, low_inclusive=False)
        self.half_life_days = check_optional_float("half_life_days", half_life_days, 0.0)

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Keep the training events sorted by time for per-query window counts.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp``; ``items``
        is ignored (it is in the signature for the common ``fit`` contract).
        Returns the fitted model.
        """
        check_interactions(interactions, type(self).__name__)
        ordered = interactions.sort_values(TIMESTAMP, kind="stable")
        self.item_ids_ = np.unique(ordered[ITEM_ID].to_numpy(dtype=object))
        self._times = ordered[TIMESTAMP].to_numpy(dtype=np.int64)
        self._codes = positions(item_index(self.item_ids_), ordered[ITEM_ID].to_numpy(dtype=object))
        self._remember_training_data(interactions)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        """Window popularity at each query's ``now``, shape ``(len(queries), n_items)``."""
        now = np.asarray(queries.now, dtype=np.int64)
        unique_now, inverse = np.unique(now, return_inverse=True)
        n_items = len(self.item_ids_)
        per_time = np.empty((len(unique_now), n_items), dtype=np.float64)
        window_s = self.window_days * SECONDS_PER_DAY
        # ``unique_now`` is ascending, so the all-time counts grow incrementally:
        # one pass over the events in total instead of one per distinct ``now``.
        all_time = np.zeros(n_items, dtype=np.float64)
        done = 0
        for row, t in enumerate(unique_now):
            end = int(np.searchsorted(self._times, t, side="left"))
            all_time += np.bincount(self._codes[done:end], minlength=n_items)
            done = end
            start = int(np.searchsorted(self._times, t - window_s, side="left"))
            per_time[row] = self._window_counts(start, end, int(t))
            per_time[row] += _TIE_BREAK_WEIGHT * all_time / max(all_time.max(), 1.0)
        return per_time[inverse]

    def _window_counts(self, start: int, end: int, now: int) -> np.ndarray:
        codes = self._codes[start:end]
        if self.half_life_days is None:
            weights = None
        else:
            age_days = (now - self._times[start:end]) / SECONDS_PER_DAY
            weights = np.power(0.5, age_days / self.half_life_days)
        return np.bincount(codes, weights=weights, minlength=len(self.item_ids_)).astype(np.float64)


class CategoryPopular(MostPopular):
    """Most popular items within a category: the category→item baseline.

    Fitting needs the catalog (``items`` with a ``categories`` list column); items
    without interactions are never recommended.
    """

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> Self:
        """Count popularity and remember which categories each item belongs to.

        Parameters
        ----------
        interactions:
            Events with ``user_id``, ``item_id`` and ``timestamp``.
        items:
            The catalog with ``item_id`` and ``categories`` columns (required).

        Returns
        -------
        CategoryPopular
            The fitted model.
        """
        if items is None or CATEGORIES not in items.columns or ITEM_ID not in items.columns:
            raise ValueError(
                "CategoryPopular.fit: `items` must be a catalog with `item_id` and "
                "`categories` columns (got "
                f"{None if items is None else list(items.columns)})"
            )
        super().fit(interactions)
        exploded = items[[ITEM_ID, CATEGORIES]].explode(CATEGORIES).dropna()
        columns = positions(item_index(self.item_ids_), exploded[ITEM_ID].to_numpy(dtype=object))
        known = columns >= 0
        categories = exploded[CATEGORIES].to_numpy(dtype=object)[known].astype(str)
        self.categories_, codes = np.unique(categories, return_inverse=True)
        self._members: dict[str, np.ndarray] = {
            str(c): np.unique(columns[known][codes == j]) for j, c in enumerate(self.categories_)
        }
        return self

    def by_category(self, categories: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of each category by popularity.

        Parameters
        ----------
        categories:
            One category per request; an unknown category yields only ``-inf`` scores.
        k:
            Number of items per request.

        Returns
        -------
        tuple of numpy.ndarray
            Item ids and scores, each of shape ``(len(categories), k)``; slots with
            score ``-inf`` are padding for categories with fewer than ``k`` items.
        """
        k = validate_k(k)
        scores = np.full((len(categories), len(self.item_ids_)), -np.inf)
        for row, category in enumerate(categories):
            members = self._members.get(category)
            if members is not None:
                scores[row, members] = self.popularity_[members]
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top
