"""Compare models on one split: tune each on validation, refit, evaluate, tabulate.

This is the loop behind both ``benchmarks/offline_quality.py`` and ``recops demo``:

1. tune every model's grid on :func:`~recops.evaluation.splits.validation_split`
   (the end of the training period, never the test period);
2. refit the best parameters on the whole training period and evaluate on test;
3. tabulate the metrics slice by slice (warm users, cold users, new-item targets,
   :data:`~recops.evaluation.protocol.GROUPS`) with 95% bootstrap intervals, and each
   model's paired-bootstrap difference against the best *other* model of the slice
   (for the two-tower: against the best baseline).
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
from recops.evaluation.tuning import Grid, fit_on_split, tune
from recops.models.base import Recommender
from recops.models.baselines import BM25Search, CategoryPopular

KS = (10, 20)
SELECTION_METRIC = "ndcg@20"
#: The slices every table shows, in order (empty ones are left out).
SLICES = ("warm", "cold", "new_items")
SLICE_LABELS = {"all": "all", "warm": "warm", "cold": "cold", "new_items": "new items"}


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
    """Tune ``spec`` on ``validation``, refit on ``split.train``, evaluate on test.

    A model that uses the catalog is fitted on the items known at the end of the
    training period and receives the later ones through ``add_items``
    (:func:`~recops.evaluation.tuning.fit_on_split`); ``train_seconds`` counts both.
    """
    catalog = items if spec.uses_items else None
    grid = spec.quick_grid if quick else spec.grid
    best, table = tune(spec.factory, grid, split, metric, items=catalog, validation=validation)
    model = spec.factory(**best)
    started = time.perf_counter()
    fit_on_split(model, split, catalog)
    train_seconds = time.perf_counter() - started
    result = evaluate(model, split, tuple(ks), name=spec.name)
    return ModelRun(spec, best, table, train_seconds, model, result)


def comparison(
    runs: Sequence[ModelRun], metric: str = SELECTION_METRIC, group: str = "all"
) -> dict[str, dict[str, Any]]:
    """Per model on one slice: is it the best, does its interval overlap the best's, and
    the paired bootstrap of its difference to the best *other* model.

    Returns an empty dict when the slice has no user.
    """
    runs = [r for r in runs if r.result.n_users(group)]
    if not runs:
        return {}
    means = {r.spec.name: r.result.mean(metric, group) for r in runs}
    best = max(runs, key=lambda r: means[r.spec.name])
    best_iv = best.result.summary(group)[metric]
    out = {}
    for run in runs:
        others = [r for r in runs if r is not run]
        iv = run.result.summary(group)[metric]
        entry: dict[str, Any] = {
            "is_best": run is best,
            "overlaps_best": run is not best and iv.overlaps(best_iv),
        }
        if others:
            rival = max(others, key=lambda r: means[r.spec.name])
            paired = paired_bootstrap(
                run.result.values(metric, group), rival.result.values(metric, group)
            )
            entry |= {
                "best_other": rival.spec.name,
                "paired_difference_vs_best_other": paired.difference.to_dict(),
                "paired_p_value": paired.p_value,
            }
        out[run.spec.name] = entry
    return out


def slice_comparisons(
    runs: Sequence[ModelRun], metric: str = SELECTION_METRIC
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`comparison` for every slice that has users, keyed by slice."""
    return {
        group: marks for group in ("all", *SLICES) if (marks := comparison(runs, metric, group))
    }


def _cell(result: EvaluationResult, metric: str, group: str = "all") -> str:
    interval = result.summary(group).get(metric)
    if interval is None:
        return "–"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _delta_cell(mark: dict[str, Any]) -> str:
    if "paired_difference_vs_best_other" not in mark:
        return "–"
    d = mark["paired_difference_vs_best_other"]
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def metric_label(metric: str) -> str:
    """``"ndcg@20"`` → ``"NDCG@20"``, ``"hit_rate@10"`` → ``"HitRate@10"``."""
    base, _, k = metric.partition("@")
    names = {"ndcg": "NDCG", "recall": "Recall", "hit_rate": "HitRate", "mrr": "MRR"}
    return f"{names.get(base, base)}@{k}"


def _params(best: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in best.items()) or "–"


def _flag(mark: dict[str, Any]) -> str:
    return " *" if mark.get("is_best") else (" ≈" if mark.get("overlaps_best") else "")


def comparison_table(
    title: str, runs: Sequence[ModelRun], metric: str = SELECTION_METRIC, *, compact: bool = False
) -> Table:
    """A rich table with one group of columns per slice (warm, cold, new items).

    Per slice: ``metric`` with its 95% interval and Recall@20 (``*`` the slice's best,
    ``≈`` an interval overlapping the best's) and the paired-bootstrap difference
    of ``metric`` to the best other model. Then coverage@20 over all lists (one
    denominator: the split's candidates), training time and the tuned parameters.
    ``compact`` keeps ``metric`` per slice (means and marks), coverage and time, to
    fit 80 columns; :func:`slice_verdicts` then gives each slice's intervals in words.
    """
    marks = slice_comparisons(runs, metric)
    groups = [g for g in SLICES if g in marks]
    sizes = ", ".join(f"{SLICE_LABELS[g]} {runs[0].result.n_users(g)} users" for g in groups)
    legend = (
        ""
        if compact
        else f"R@20: Recall@20; Δ: paired bootstrap of {metric} against the best other "
        "model of the slice (the runner-up for the best); "
    )
    caption = (
        f"{sizes}; * best {metric} of the slice, ≈ 95% interval overlaps the best's; "
        f"{legend}coverage over {runs[0].result.n_candidates} shared candidates"
        if runs
        else ""
    )
    table = Table(title=title, caption=caption)
    name = metric_label(metric)
    columns: dict[str, Any] = {"model": lambda run: run.spec.name}
    for g in groups:
        label = SLICE_LABELS[g]
        # Compact: the slice above the metric, so a model's name keeps its line.
        columns[f"{label}\n{name}" if compact else f"{label} {name}"] = lambda run, g=g: (
            (f"{run.result.mean(metric, g):.3f}" if compact else _cell(run.result, metric, g))
            + _flag(marks[g].get(run.spec.name, {}))
        )
        if not compact:
            columns[f"{label} R@20"] = lambda run, g=g: f"{run.result.mean('recall@20', g):.3f}"
            columns[f"{label} Δ{name}"] = lambda run, g=g: _delta_cell(
                marks[g].get(run.spec.name, {})
            )
    columns["Cov@20"] = lambda run: f"{run.result.coverage(20):.3f}"
    columns["train s"] = lambda run: f"{run.train_seconds:.1f}"
    if not compact:
        columns["best params"] = lambda run: _params(run.best_params)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column == "model")
    for run in runs:
        table.add_row(*(cell(run) for cell in columns.values()))
    return table


def slice_verdicts(runs: Sequence[ModelRun], metric: str = SELECTION_METRIC) -> list[str]:
    """One sentence per slice: its best model with the 95% interval, and the paired
    bootstrap of its lead over the runner-up (what the compact table leaves out)."""
    lines = []
    for group, marks in slice_comparisons(runs, metric).items():
        if group == "all":
            continue
        best = next(r for r in runs if marks.get(r.spec.name, {}).get("is_best"))
        line = (
            f"{SLICE_LABELS[group]} ({best.result.n_users(group):,} users): {best.spec.name} "
            f"{metric_label(metric)} {_cell(best.result, metric, group)}"
        )
        mark = marks[best.spec.name]
        if "paired_difference_vs_best_other" in mark:
            line += f", {_delta_cell(mark)} over {mark['best_other']} (paired bootstrap)"
        lines.append(line)
    return lines


def split_table(split: Split, title: str = "split") -> Table:
    """A two-column table of :meth:`Split.describe` (for people; JSON keeps the dict)."""
    facts = split.describe()
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    labels = {
        "protocol": "protocol",
        "train_events": "training events",
        "users": "evaluated users",
        "warm_users": "  warm (history in training)",
        "cold_users": "  cold (first events in the test period)",
        "users_with_new_item_targets": "  with new-item targets",
        "candidates": "shared candidates",
        "targets": "targets",
        "new_item_targets": "  of which new items",
        "dropped_targets_in_history": "targets dropped (already in history)",
    }
    for key, label in labels.items():
        value = facts[key]
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    params = ", ".join(f"{k}={v}" for k, v in facts["params"].items())
    table.add_row("parameters", params)
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
