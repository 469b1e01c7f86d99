"""Grid search of a model's parameters on the validation split.

Tuning always happens on :func:`~recops.evaluation.splits.validation_split` of the
training period, never on the test targets; the caller then refits the best
parameters on the full training period and evaluates on test once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID
from recops.evaluation.metrics import RANKING_METRICS
from recops.evaluation.protocol import evaluate
from recops.evaluation.splits import Split, catalog_at, validation_split
from recops.models.base import Recommender
from recops.progress_bar import transient_bar

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """All parameter combinations of ``grid``.

    Parameters
    ----------
    grid:
        Either ``{"param": [values...]}`` (the Cartesian product is taken) or an
        explicit list of parameter dicts.

    Returns
    -------
    list of dict
        At least one combination (``{}`` for an empty mapping: the defaults).
    """
    if isinstance(grid, Mapping):
        for key, values in grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"grid[{key!r}] must be a non-empty list of values (got {values!r})"
                )
        keys = list(grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
    combos = [dict(c) for c in grid]
    if not combos:
        raise ValueError("`grid` must hold at least one parameter combination (got [])")
    return combos


def fit_on_split(
    model: Recommender, split: Split, items: pd.DataFrame | None = None, **fit_params: Any
) -> Recommender:
    """Fit ``model`` on ``split.train`` as a deployed system would have been fitted.

    With a catalog, the model is fitted on the items known at the end of the
    training period (:func:`~recops.evaluation.splits.catalog_at`); the items
    published later reach it through ``model.add_items`` when it has that method
    (the two-tower embeds them from their content, without retraining), and are
    never seen by a model without it. ``fit_params`` go to ``model.fit`` (the
    two-tower's ``impressions``).
    """
    if items is None:
        return model.fit(split.train, **fit_params)
    known, later = catalog_at(items, split.train_end, split.train[ITEM_ID])
    model.fit(split.train, known, **fit_params)
    add_items = getattr(model, "add_items", None)
    if add_items is not None and len(later):
        add_items(later)
    return model


def _parse_metric(metric: str) -> int:
    name, _, k = metric.partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(
            f"`metric` must look like '<name>@<k>' with name in {sorted(RANKING_METRICS)} "
            f"(got {metric!r})"
        )
    return int(k)


def tune(
    make_model: Callable[..., Recommender],
    grid: Grid,
    split: Split,
    metric: str = "ndcg@20",
    *,
    items: pd.DataFrame | None = None,
    validation: Split | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick the parameters that maximise ``metric`` on the validation split.

    Parameters
    ----------
    make_model:
        Called as ``make_model(**params)`` to build an unfitted model (a class works).
    grid:
        Parameter grid, see :func:`expand_grid`.
    split:
        The train/test split; only its training period is used.
    metric:
        The selection metric, e.g. ``"ndcg@20"`` or ``"recall@10"``.
    items:
        The catalog, passed to ``fit`` for models that use it.
    validation:
        A precomputed ``validation_split(split)`` (saves recomputing it per model).
    progress:
        Show a progress bar.

    Returns
    -------
    best_params : dict
        The best combination (first one wins ties).
    table : pandas.DataFrame
        One row per combination: its parameters, ``metric`` and ``fit_seconds``,
        best first. A grid of one combination is returned without fitting
        (``metric`` NaN).
    """
    k = _parse_metric(metric)
    combos = expand_grid(grid)
    if len(combos) == 1:
        # Nothing to choose: fitting on the validation period would only cost time.
        return dict(combos[0]), pd.DataFrame([{**combos[0], metric: np.nan, "fit_seconds": 0.0}])
    val = validation if validation is not None else validation_split(split)
    rows = []
    with transient_bar(enabled=progress) as bar:
        task = bar.add_task(f"tuning {getattr(make_model, '__name__', 'model')}", total=len(combos))
        for params in combos:
            model = make_model(**params)
            started = time.perf_counter()
            fit_on_split(model, val, items)
            fit_seconds = time.perf_counter() - started
            score = evaluate(model, val, ks=(k,)).mean(metric)
            rows.append({**params, metric: score, "fit_seconds": fit_seconds})
            bar.advance(task)
    table = pd.DataFrame(rows)
    order = np.argsort(-table[metric].to_numpy(dtype=np.float64), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    best = combos[int(order[0])]
    return dict(best), table
