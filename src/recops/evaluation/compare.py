"""Compare models on one split: tune each on validation, refit, evaluate, tabulate.

This is the loop behind both ``benchmarks/offline_quality.py`` and ``recops demo``:

1. tune every model's grid on :func:`~recops.evaluation.splits.validation_split`
   (the end of the training period, never the test period);
2. refit the best parameters on the whole training period and evaluate on test;
3. tabulate the metrics with 95% bootstrap intervals, marking the models whose
   interval overlaps the best model's (no clear winner).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.table import Table

from recops.evaluation.bootstrap import paired_bootstrap
from recops.evaluation.protocol import EvaluationResult, evaluate
from recops.evaluation.splits import Split
from recops.evaluation.tasks import evaluate_by_category, evaluate_search, evaluate_similar
from recops.evaluation.tuning import Grid, tune
from recops.models.base import Recommender
from recops.models.baselines import BM25Search, CategoryPopular

KS = (10, 20)
SELECTION_METRIC = "ndcg@20"


@dataclass(frozen=True)
class ModelSpec:
    """A model in a comparison: how to build it and what to tune.

    Parameters
    ----------
    name:
        Row label.
    factory:
        Called with one grid combination to build an unfitted model.
    grid, quick_grid:
        Parameter grids for the full and quick runs (see :func:`tune`).
    uses_items:
        Whether ``fit`` should receive the catalog.
    """

    name: str
    factory: Callable[..., Recommender]
    grid: Grid
    quick_grid: Grid
    uses_items: bool = False


@dataclass
class ModelRun:
    """Everything measured for one model on one split."""

    spec: ModelSpec
    best_params: dict[str, Any]
    tuning: pd.DataFrame
    train_seconds: float
    model: Recommender
    result: EvaluationResult
    extra: dict[str, Any] = field(default_factory=dict)


def run_model(
    spec: ModelSpec,
    split: Split,
    validation: Split,
    items: pd.DataFrame | None,
    *,
    quick: bool,
    metric: str = SELECTION_METRIC,
    ks: Sequence[int] = KS,
) -> ModelRun:
    """Tune ``spec`` on ``validation``, refit on ``split.train``, evaluate on test."""
    catalog = items if spec.uses_items else None
    grid = spec.quick_grid if quick else spec.grid
    best, table = tune(spec.factory, grid, split, metric, items=catalog, validation=validation)
    model = spec.factory(**best)
    started = time.perf_counter()
    if catalog is None:
        model.fit(split.train)
    else:
        model.fit(split.train, catalog)
    train_seconds = time.perf_counter() - started
    result = evaluate(model, split, tuple(ks), name=spec.name)
    return ModelRun(spec, best, table, train_seconds, model, result)


def comparison(
    runs: Sequence[ModelRun], metric: str = SELECTION_METRIC
) -> dict[str, dict[str, Any]]:
    """Per model: is it the best, does its interval overlap the best's, the paired test."""
    best = max(runs, key=lambda r: r.result.mean(metric))
    best_iv = best.result.summary()[metric]
    out = {}
    for run in runs:
        iv = run.result.summary()[metric]
        paired = paired_bootstrap(best.result.per_user[metric], run.result.per_user[metric])
        out[run.spec.name] = {
            "is_best": run is best,
            "overlaps_best": run is not best and iv.overlaps(best_iv),
            "paired_difference_vs_best": paired.difference.to_dict(),
            "paired_p_value": paired.p_value,
        }
    return out


def _cell(result: EvaluationResult, metric: str, group: str = "all") -> str:
    interval = result.summary(group).get(metric)
    if interval is None:
        return "–"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _group_cell(result: EvaluationResult, metric: str, group: str) -> str:
    n = result.n_users(group)
    return f"{result.mean(metric, group):.3f} (n={n})" if n else "–"


def _params(best: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in best.items()) or "–"


def comparison_table(
    title: str, runs: Sequence[ModelRun], metric: str = SELECTION_METRIC, *, compact: bool = False
) -> Table:
    """A rich table: metrics with intervals, warm/cold, coverage, time and parameters.

    The best model by ``metric`` is marked ``*``; ``≈`` marks a model whose 95%
    interval overlaps the best's (the difference is not established). ``compact``
    keeps the @20 columns only, for an 80-column terminal.
    """
    marks = comparison(runs, metric)
    caption = f"* best {metric};  ≈ its 95% interval overlaps the best's"
    table = Table(title=title, caption=caption)
    columns = {
        "model": lambda run: run.spec.name,
        "Recall@10": lambda run: _cell(run.result, "recall@10"),
        "Recall@20": lambda run: _cell(run.result, "recall@20"),
        "NDCG@10": lambda run: _cell(run.result, "ndcg@10"),
        "NDCG@20": lambda run: _cell(run.result, "ndcg@20"),
        f"{metric} warm": lambda run: _group_cell(run.result, metric, "warm"),
        f"{metric} cold": lambda run: _group_cell(run.result, metric, "cold"),
        "HitRate@20": lambda run: f"{run.result.mean('hit_rate@20'):.3f}",
        "Cov@20": lambda run: f"{run.result.coverage(20):.3f}",
        "train s": lambda run: f"{run.train_seconds:.1f}",
        "best params": lambda run: _params(run.best_params),
    }
    if compact:
        keep = ("model", "Recall@20", "NDCG@20", "Cov@20", "train s")
        columns = {name: cell for name, cell in columns.items() if name in keep}
    for name in columns:
        table.add_column(name, overflow="fold")
    for run in runs:
        mark = marks[run.spec.name]
        flag = " *" if mark["is_best"] else (" ≈" if mark["overlaps_best"] else "")
        cells = [cell(run) for cell in columns.values()]
        table.add_row(cells[0] + flag, *cells[1:])
    return table


def task_results(
    runs: Sequence[ModelRun], split: Split, items: pd.DataFrame, ks: Sequence[int] = KS
) -> list[EvaluationResult]:
    """Item→item, query→item and category→item for every model that has the method.

    The task baselines (BM25 title search, popularity within a category) join in.
    """
    fitted: list[Any] = [r.model for r in runs]
    fitted += [BM25Search().fit(items), CategoryPopular().fit(split.train, items)]
    out = []
    for model in fitted:
        if hasattr(model, "similar"):
            out.append(evaluate_similar(model, split, tuple(ks)))
        if hasattr(model, "search"):
            out.append(evaluate_search(model, split, items, tuple(ks)))
        if hasattr(model, "by_category"):
            out.append(evaluate_by_category(model, split, items, tuple(ks)))
    return out


def tasks_table(title: str, results: Sequence[EvaluationResult]) -> Table:
    """A rich table of the other tasks' results, one row per task and model."""
    table = Table(title=title)
    for column in ("task / model", "requests", "Recall@10", "NDCG@10", "HitRate@20"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.model,
            str(r.n_users()),
            _cell(r, "recall@10"),
            _cell(r, "ndcg@10"),
            f"{r.mean('hit_rate@20'):.3f}",
        )
    return table
