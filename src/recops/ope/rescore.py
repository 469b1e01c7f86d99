"""A model's scores of the candidates logged requests chose from, as of each request.

Off-policy evaluation of a *new model* on the exposure log of the current one needs
the new model's scores of each logged request's candidates, computed as the server
would have computed them then: from the user's events *before* the request time
(causal), with the request's ``now``. :class:`CausalHistories` answers "what did
this user do before t", and :func:`score_candidates` turns a fitted
:class:`~recops.models.base.Recommender` into the ``(n_requests, n_candidates)``
score matrix ``recops ope --ranking-policy ... --target-scores`` takes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID
from recops.models.base import Queries, Recommender


class CausalHistories:
    """Each user's events in time order, cut at any moment.

    Parameters
    ----------
    interactions:
        Events in the interaction schema (``user_id, item_id, timestamp``): the
        training data and whatever the server logged since.
    """

    _EMPTY = (np.array([], dtype=object), np.array([], dtype=np.int64))

    def __init__(self, interactions: pd.DataFrame) -> None:
        missing = {USER_ID, ITEM_ID, TIMESTAMP} - set(interactions.columns)
        if missing:
            raise ValueError(f"`interactions` lacks column(s) {', '.join(sorted(missing))}")
        ordered = interactions.sort_values(TIMESTAMP, kind="stable")
        self._by_user = {
            str(user): (g[ITEM_ID].to_numpy(dtype=object), g[TIMESTAMP].to_numpy(dtype=np.int64))
            for user, g in ordered.groupby(USER_ID, sort=False)
        }

    def queries(self, user_ids: Sequence[str], times: np.ndarray) -> Queries:
        """Queries holding each user's events strictly before their time."""
        items, stamps = [], []
        for user, now in zip(user_ids, times, strict=True):
            h_items, h_times = self._by_user.get(str(user), self._EMPTY)
            cut = int(np.searchsorted(h_times, now, side="left"))
            items.append(h_items[:cut])
            stamps.append(h_times[:cut])
        return Queries([str(u) for u in user_ids], items, stamps, np.asarray(times, dtype=np.int64))


def pick_columns(model: Recommender, full: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``full[:, item_ids]`` by id; items the model does not know score below all it knows.

    Parameters
    ----------
    full:
        ``model.score`` output, ``(n, len(model.item_ids_))``.
    item_ids:
        ``(n, m)`` ids to pick per row.
    """
    position = {str(item): j for j, item in enumerate(model.item_ids_)}
    cols = np.vectorize(lambda i: position.get(str(i), -1), otypes=[np.int64])(item_ids)
    picked = np.take_along_axis(full, np.maximum(cols, 0), axis=1)
    floor = np.min(np.where(np.isfinite(full), full, np.inf), axis=1, keepdims=True) - 1.0
    return np.where((cols >= 0) & np.isfinite(picked), picked, floor)


def score_candidates(
    model: Recommender,
    user_ids: Sequence[str],
    times: np.ndarray,
    candidates: Sequence[Sequence[str]],
    interactions: pd.DataFrame | CausalHistories,
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """The model's scores of each request's candidates, as of the request.

    Parameters
    ----------
    model:
        A fitted recommender (the challenger).
    user_ids, times:
        Each request's unit and unix time.
    candidates:
        Each request's candidate item ids; every request must have the same number.
    interactions:
        What users did (training data plus the logged events), for their histories,
        or those histories already built (:class:`CausalHistories`).
    batch_size:
        Requests scored per ``model.score`` call (bounds memory at
        ``batch_size × n_items`` floats).

    Returns
    -------
    numpy.ndarray
        ``(n_requests, n_candidates)`` float64.
    """
    lengths = {len(c) for c in candidates}
    if len(lengths) > 1:
        raise ValueError(
            f"every request must log the same number of candidates (got {sorted(lengths)})"
        )
    ids = np.asarray([list(c) for c in candidates], dtype=object)
    out = np.empty(ids.shape, dtype=np.float64)
    for rows, queries in _query_batches(user_ids, times, candidates, interactions, batch_size):
        full = np.asarray(model.score(queries), dtype=np.float64)
        out[rows] = pick_columns(model, full, ids[rows])
    return out


def _query_batches(
    user_ids: Sequence[str],
    times: np.ndarray,
    candidates: Sequence[Sequence[str]],
    interactions: pd.DataFrame | CausalHistories,
    batch_size: int,
) -> Iterator[tuple[slice, Queries]]:
    """The requests' causal queries, ``batch_size`` at a time (inputs checked first)."""
    if not len(user_ids) == len(times) == len(candidates):
        raise ValueError(
            f"`user_ids`, `times` and `candidates` must have one entry per request (got "
            f"{len(user_ids)}, {len(times)} and {len(candidates)})"
        )
    histories = (
        interactions if isinstance(interactions, CausalHistories) else CausalHistories(interactions)
    )
    times = np.asarray(times, dtype=np.int64)
    for start in range(0, len(user_ids), batch_size):
        rows = slice(start, start + batch_size)
        yield rows, histories.queries(list(user_ids[rows]), times[rows])


def candidate_support(
    model: Recommender,
    user_ids: Sequence[str],
    times: np.ndarray,
    candidates: Sequence[Sequence[str]],
    interactions: pd.DataFrame | CausalHistories,
    k: int,
    *,
    batch_size: int = 256,
) -> float:
    """Mean share of the model's own top-``k`` (seen items excluded) held by the candidates.

    Off-policy estimates over logged candidates describe the model choosing *among
    them*. When a log holds only what a deterministic policy showed, a new model that
    would show other items is not what they describe: this share says how much of
    the model's own slate the logged candidates cover (1: all of it).
    """
    if k < 1:
        raise ValueError(f"`k` must be a positive int (got {k!r})")
    if len(user_ids) == 0:
        raise ValueError("no requests to measure the support on")
    shares = []
    for rows, queries in _query_batches(user_ids, times, candidates, interactions, batch_size):
        own, _ = model.recommend_queries(queries, k)
        for mine, logged in zip(own, candidates[rows], strict=True):
            shares.append(len({str(i) for i in mine} & {str(i) for i in logged}) / k)
    return float(np.mean(shares))
