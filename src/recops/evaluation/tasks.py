"""Evaluation of the non-user tasks: item→item, query→item and category→item.

Each task turns a :class:`~recops.evaluation.splits.Split` into requests with known
answers, asks a model that has the matching method, and scores the lists with the
same metrics as :func:`~recops.evaluation.protocol.evaluate`:

* item→item, ``model.similar(item_ids, k)``: request = a user's last history item,
  target = their next (first held-out) item;
* query→item, ``model.search(texts, k)``: request = a held-out item's title in
  lower case without the year, target = that item; or, with ``query_column``,
  another text of the item the model never trained on (MIND's abstracts: queries
  the model has not seen, against a model and BM25 that index titles);
* category→item, ``model.by_category(categories, k)``: request = the most specific
  (rarest in the catalog) category of a user's next item, targets = the user's
  held-out items in that category.

Every method must return ``(item_ids, scores)`` of shape ``(n_requests, k)``, as
``Recommender.recommend_queries`` does; ``-inf`` scores mark empty slots.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import CATEGORIES, ITEM_ID, TITLE
from recops.evaluation.metrics import hit_matrix, per_user_metrics
from recops.evaluation.protocol import EvaluationResult
from recops.evaluation.splits import Split
from recops.models.base import validate_k
from recops.models.baselines._params import check_int

_YEAR = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$")

Lister = Callable[[Sequence[Any], int], tuple[np.ndarray, np.ndarray]]


def title_query(title: str) -> str:
    """A search query from a title: lower case, without a trailing ``(year)``.

    >>> title_query("Toy Story (1995)")
    'toy story'
    """
    return _YEAR.sub("", str(title)).strip().lower()


def _run_lists(
    lister: Lister,
    requests: Sequence[Any],
    targets: Sequence[np.ndarray],
    user_ids: np.ndarray,
    is_cold: np.ndarray,
    *,
    name: str,
    ks: Sequence[int],
    n_candidates: int,
    batch_size: int,
    n_boot: int,
    seed: int,
) -> EvaluationResult:
    ks = tuple(sorted({validate_k(k) for k in ks}))
    batch_size = check_int("batch_size", batch_size, 1)
    if len(requests) == 0:
        raise ValueError(f"{name}: the split yields no request for this task")
    k = max(ks)
    recommended = np.full((len(requests), k), None, dtype=object)
    started = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        stop = min(start + batch_size, len(requests))
        ids, scores = lister(list(requests[start:stop]), k)
        ids = np.asarray(ids, dtype=object)
        ids[np.isneginf(np.asarray(scores, dtype=np.float64))] = None
        recommended[start:stop, : ids.shape[1]] = ids
    elapsed = time.perf_counter() - started
    hits = hit_matrix(recommended, targets)
    n_targets = np.fromiter((len(t) for t in targets), dtype=np.int64, count=len(targets))
    return EvaluationResult(
        model=name,
        ks=ks,
        user_ids=np.asarray(user_ids, dtype=object),
        is_cold=np.asarray(is_cold, dtype=bool),
        per_user=per_user_metrics(hits, n_targets, ks),
        recommended=recommended,
        n_candidates=n_candidates,
        predict_seconds=elapsed,
        n_boot=n_boot,
        seed=seed,
    )


def _n_candidates(model: Any, fallback: int) -> int:
    return len(model.item_ids_) if hasattr(model, "item_ids_") else fallback


def evaluate_similar(
    model: Any,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    name: str | None = None,
    batch_size: int = 512,
    n_boot: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Item→item: does ``model.similar(last_item, k)`` find the user's next item?

    Users whose last history item the model does not know are skipped.

    Parameters
    ----------
    model:
        A fitted object with ``similar(item_ids, k)`` and ``item_ids_``.
    split:
        The split; targets[i][0] is each user's next item.
    ks, name, batch_size, n_boot, seed:
        As in :func:`~recops.evaluation.protocol.evaluate`.

    Returns
    -------
    EvaluationResult
        One row per evaluated user.
    """
    known = set(np.asarray(model.item_ids_, dtype=object).tolist())
    rows = [
        i
        for i, hist in enumerate(split.queries.histories)
        if len(hist) and hist[-1] in known and len(split.targets[i])
    ]
    return _run_lists(
        model.similar,
        [split.queries.histories[i][-1] for i in rows],
        [split.targets[i][:1] for i in rows],
        np.asarray([split.queries.user_ids[i] for i in rows], dtype=object),
        split.is_cold[rows],
        name=name or f"{type(model).__name__}.similar",
        ks=ks,
        n_candidates=len(known),
        batch_size=batch_size,
        n_boot=n_boot,
        seed=seed,
    )


def evaluate_search(
    model: Any,
    split: Split,
    items: pd.DataFrame,
    ks: Sequence[int] = (10, 20),
    *,
    name: str | None = None,
    max_queries: int = 1000,
    batch_size: int = 512,
    n_boot: int = 1000,
    seed: int = 0,
    query_column: str = TITLE,
) -> EvaluationResult:
    """Query→item: does ``model.search(text, k)`` find the item the text describes?

    Requests are the distinct target items of ``split`` that have a
    ``query_column`` text, at most ``max_queries`` of them (a seeded sample). With
    the default, the text is the title (lower case, without a trailing year): a
    query the two-tower's title task has trained on. ``query_column="abstract"``
    (MIND) asks with a text no model indexed or trained on.

    Parameters
    ----------
    model:
        A fitted object with ``search(texts, k)``.
    split:
        Supplies the held-out items to search for.
    items:
        The catalog with ``item_id`` and ``query_column``.
    query_column:
        The catalog column the queries are taken from.
    max_queries:
        Cap on the number of requests (1..1_000_000).
    ks, name, batch_size, n_boot, seed:
        As in :func:`~recops.evaluation.protocol.evaluate`.

    Returns
    -------
    EvaluationResult
        One row per searched item (``user_ids`` holds the item ids).
    """
    max_queries = check_int("max_queries", max_queries, 1, 1_000_000)
    if query_column not in items.columns:
        raise ValueError(
            f"evaluate_search: the catalog has no {query_column!r} column (has {list(items)})"
        )
    titles = items.drop_duplicates(ITEM_ID).set_index(ITEM_ID)[query_column].dropna()
    titles = titles[titles.astype(str).str.strip() != ""]
    wanted = pd.unique(np.concatenate([np.asarray(t, dtype=object) for t in split.targets]))
    searchable = np.array([i for i in wanted if i in titles.index], dtype=object)
    if len(searchable) > max_queries:
        rng = np.random.default_rng(seed)
        searchable = np.sort(rng.choice(searchable, size=max_queries, replace=False))
    texts = (
        [title_query(titles.loc[i]) for i in searchable]
        if query_column == TITLE
        else [str(titles.loc[i]).lower() for i in searchable]
    )
    return _run_lists(
        model.search,
        texts,
        [np.array([i], dtype=object) for i in searchable],
        searchable,
        np.zeros(len(searchable), dtype=bool),
        name=name
        or f"{type(model).__name__}.search"
        + ("" if query_column == TITLE else f" ({query_column})"),
        ks=ks,
        n_candidates=_n_candidates(model, len(titles)),
        batch_size=batch_size,
        n_boot=n_boot,
        seed=seed,
    )


def evaluate_by_category(
    model: Any,
    split: Split,
    items: pd.DataFrame,
    ks: Sequence[int] = (10, 20),
    *,
    name: str | None = None,
    batch_size: int = 512,
    n_boot: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Category→item: does ``model.by_category(category, k)`` find the user's items?

    Per user the request is the rarest catalog category of their next item (the
    most specific one: "Film-Noir" rather than "Drama"); targets are the user's
    held-out items in that category. Users whose next item has no category are
    skipped.

    Parameters
    ----------
    model:
        A fitted object with ``by_category(categories, k)``.
    split:
        The split; targets[i][0] is each user's next item.
    items:
        The catalog with ``item_id`` and ``categories`` (a list per item).
    ks, name, batch_size, n_boot, seed:
        As in :func:`~recops.evaluation.protocol.evaluate`.

    Returns
    -------
    EvaluationResult
        One row per evaluated user.
    """
    catalog = items.drop_duplicates(ITEM_ID).set_index(ITEM_ID)[CATEGORIES]
    category_sets = {i: set(c) for i, c in catalog.items() if isinstance(c, list | np.ndarray)}
    frequency = pd.Series([c for cs in category_sets.values() for c in cs]).value_counts()
    requests, targets, rows = [], [], []
    for i, user_targets in enumerate(split.targets):
        first = category_sets.get(user_targets[0], set())
        if not first:
            continue
        category = min(first, key=lambda c: (frequency[c], str(c)))
        in_category = [t for t in user_targets if category in category_sets.get(t, ())]
        requests.append(category)
        targets.append(np.asarray(in_category, dtype=object))
        rows.append(i)
    return _run_lists(
        model.by_category,
        requests,
        targets,
        np.asarray([split.queries.user_ids[i] for i in rows], dtype=object),
        split.is_cold[rows],
        name=name or f"{type(model).__name__}.by_category",
        ks=ks,
        n_candidates=_n_candidates(model, len(catalog)),
        batch_size=batch_size,
        n_boot=n_boot,
        seed=seed,
    )
