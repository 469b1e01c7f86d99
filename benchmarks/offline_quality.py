"""Offline quality benchmark: every model, tuned on validation, evaluated on test.

For each dataset × protocol × feedback variant:

1. split the interactions (global temporal 80/20, or leave-last-5-out per user);
2. tune every model's grid on ``validation_split`` (the end of the training period);
3. refit the best parameters on the full training period and evaluate on test;
4. print a table with 95% bootstrap intervals over users, and mark the models whose
   NDCG@20 interval overlaps the best model's (no clear winner);
5. score the other tasks (item→item, query→item, category→item) for the models that
   have them.

Results go to ``benchmarks/results/offline_quality.json``. Adding a model is one
``ModelSpec`` in :func:`model_specs`.

Usage::

    python benchmarks/offline_quality.py --quick
    python benchmarks/offline_quality.py --datasets ml-100k --protocols global_temporal
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.data.loaders import load_dataset
from recops.evaluation import (
    EvaluationResult,
    Split,
    evaluate,
    evaluate_by_category,
    evaluate_search,
    evaluate_similar,
    implicit_only,
    leave_last_n_out,
    paired_bootstrap,
    temporal_split,
    tune,
    validation_split,
)
from recops.evaluation.tuning import Grid
from recops.models.base import Recommender
from recops.models.baselines import (
    ALS,
    BPR,
    EASE,
    BM25Search,
    CategoryPopular,
    ItemKNN,
    MostPopular,
    RecentPopular,
)

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ml-100k", "ml-latest-small")
PROTOCOLS = ("global_temporal", "leave_last_n_out")
# Variant name -> minimum rating kept (None: every rating is an interaction).
VARIANTS: dict[str, float | None] = {"all": None, "ge4": 4.0}
KS = (10, 20)
SELECTION_METRIC = "ndcg@20"
LEAVE_OUT_N = 5


@dataclass(frozen=True)
class ModelSpec:
    """A model in the benchmark: how to build it and what to tune.

    Parameters
    ----------
    name:
        Row label.
    factory:
        Called with one grid combination to build an unfitted model.
    grid, quick_grid:
        Parameter grids for the full and ``--quick`` runs (see ``tune``).
    uses_items:
        Whether ``fit`` should receive the catalog.
    """

    name: str
    factory: Callable[..., Recommender]
    grid: Grid
    quick_grid: Grid
    uses_items: bool = False


@dataclass
class Report:
    """Everything measured for one model in one configuration."""

    spec: ModelSpec
    best_params: dict[str, Any]
    tuning: pd.DataFrame
    train_seconds: float
    model: Recommender
    result: EvaluationResult
    extra: dict[str, Any] = field(default_factory=dict)


def model_specs() -> list[ModelSpec]:
    """The models compared; the two-tower joins when its package is importable."""
    specs = [
        ModelSpec("MostPopular", MostPopular, {}, {}),
        ModelSpec(
            "RecentPopular",
            RecentPopular,
            {"window_days": [1, 3, 7, 14, 30, 90], "half_life_days": [None]},
            {"window_days": [3, 7, 30]},
        ),
        ModelSpec(
            "ItemKNN",
            ItemKNN,
            {"n_neighbors": [50, 100, 300, 1000], "shrink": [0.0, 10.0, 50.0]},
            {"n_neighbors": [100], "shrink": [10.0]},
        ),
        ModelSpec(
            "EASE",
            EASE,
            # 2000 won on the temporal splits in a first run, so the grid goes beyond it.
            {"l2": [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0], "min_item_users": [3]},
            {"l2": [100.0, 500.0], "min_item_users": [3]},
        ),
        ModelSpec(
            "ALS",
            ALS,
            {"factors": [32, 64, 128], "regularization": [0.01, 0.1, 1.0], "iterations": [15]},
            {"factors": [32, 64], "regularization": [0.1], "iterations": [15]},
        ),
        ModelSpec(
            "BPR",
            BPR,
            {"factors": [32, 64], "learning_rate": [0.01, 0.05], "iterations": [100, 300]},
            {"factors": [64], "learning_rate": [0.05], "iterations": [100]},
        ),
    ]
    try:
        from recops.models.two_tower import TwoTower
    except ImportError:
        return specs
    specs.append(
        ModelSpec(
            "TwoTower",
            TwoTower,
            # Training dominates the run time: keep the grid small (epochs cost linearly).
            {"epochs": [5, 10], "temperature": [0.05, 0.1], "num_threads": [2]},
            {"epochs": [3], "num_threads": [2]},
            uses_items=True,
        )
    )
    return specs


def make_split(events: pd.DataFrame, protocol: str) -> Split:
    """The test split of one protocol."""
    if protocol == "global_temporal":
        return temporal_split(events, 0.8)
    return leave_last_n_out(events, n=LEAVE_OUT_N)


def run_model(
    spec: ModelSpec, split: Split, validation: Split, items: pd.DataFrame, *, quick: bool
) -> Report:
    """Tune on validation, refit on the whole training period, evaluate on test."""
    catalog = items if spec.uses_items else None
    grid = spec.quick_grid if quick else spec.grid
    best, table = tune(
        spec.factory, grid, split, SELECTION_METRIC, items=catalog, validation=validation
    )
    model = spec.factory(**best)
    started = time.perf_counter()
    if catalog is None:
        model.fit(split.train)
    else:
        model.fit(split.train, catalog)
    train_seconds = time.perf_counter() - started
    result = evaluate(model, split, KS, name=spec.name)
    return Report(spec, best, table, train_seconds, model, result)


def _cell(result: EvaluationResult, metric: str, group: str = "all") -> str:
    interval = result.summary(group).get(metric)
    if interval is None:
        return "–"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _group_cell(result: EvaluationResult, group: str) -> str:
    n = result.n_users(group)
    return f"{result.mean(SELECTION_METRIC, group):.3f} (n={n})" if n else "–"


def _params(best: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in best.items()) or "–"


def comparison(reports: Sequence[Report]) -> dict[str, dict[str, Any]]:
    """Per model: does its NDCG@20 interval overlap the best's, and the paired test."""
    best = max(reports, key=lambda r: r.result.mean(SELECTION_METRIC))
    best_iv = best.result.summary()[SELECTION_METRIC]
    out = {}
    for report in reports:
        iv = report.result.summary()[SELECTION_METRIC]
        paired = paired_bootstrap(
            best.result.per_user[SELECTION_METRIC], report.result.per_user[SELECTION_METRIC]
        )
        out[report.spec.name] = {
            "is_best": report is best,
            "overlaps_best": report is not best and iv.overlaps(best_iv),
            "paired_difference_vs_best": paired.difference.to_dict(),
            "paired_p_value": paired.p_value,
        }
    return out


def print_table(console: Console, title: str, reports: Sequence[Report]) -> None:
    """One rich table: metrics with intervals, warm/cold NDCG, time and params."""
    marks = comparison(reports)
    table = Table(title=title, show_lines=False)
    for column in (
        "model",
        "Recall@10",
        "Recall@20",
        "NDCG@10",
        "NDCG@20",
        "NDCG@20 warm",
        "NDCG@20 cold",
        "HitRate@20",
        "Cov@20",
        "train s",
        "best params",
    ):
        table.add_column(column, overflow="fold")
    for report in reports:
        r, mark = report.result, marks[report.spec.name]
        flag = " *" if mark["is_best"] else (" ≈" if mark["overlaps_best"] else "")
        table.add_row(
            report.spec.name + flag,
            _cell(r, "recall@10"),
            _cell(r, "recall@20"),
            _cell(r, "ndcg@10"),
            _cell(r, "ndcg@20"),
            _group_cell(r, "warm"),
            _group_cell(r, "cold"),
            f"{r.mean('hit_rate@20'):.3f}",
            f"{r.coverage(20):.3f}",
            f"{report.train_seconds:.1f}",
            _params(report.best_params),
        )
    console.print(table)
    console.print("  * best NDCG@20;  ≈ its 95% interval overlaps the best model's\n")


def task_results(
    reports: Sequence[Report], split: Split, items: pd.DataFrame
) -> list[EvaluationResult]:
    """Item→item, query→item and category→item for every model that has the method."""
    fitted: list[Any] = [r.model for r in reports]
    fitted += [BM25Search().fit(items), CategoryPopular().fit(split.train, items)]
    out = []
    for model in fitted:
        if hasattr(model, "similar"):
            out.append(evaluate_similar(model, split, KS))
        if hasattr(model, "search"):
            out.append(evaluate_search(model, split, items, KS))
        if hasattr(model, "by_category"):
            out.append(evaluate_by_category(model, split, items, KS))
    return out


def print_tasks(console: Console, title: str, results: Sequence[EvaluationResult]) -> None:
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
    console.print(table)


def run_configuration(
    console: Console,
    dataset: str,
    data_dir: Path,
    protocol: str,
    variant: str,
    *,
    quick: bool,
    specs: Sequence[ModelSpec],
) -> dict[str, Any]:
    """One dataset × protocol × variant: split, tune, evaluate, print; the JSON record."""
    data = load_dataset(dataset, data_dir=data_dir)
    events = implicit_only(data.interactions, VARIANTS[variant])
    split = make_split(events, protocol)
    validation = validation_split(split)
    title = f"{dataset} · {protocol} · ratings {variant}"
    console.rule(title)
    console.print(f"test: {split.describe()}\nvalidation: {validation.describe()}")
    reports = []
    for spec in specs:
        console.print(f"[dim]{spec.name}: tuning on validation[/dim]")
        reports.append(run_model(spec, split, validation, data.items, quick=quick))
    print_table(console, title, reports)
    tasks = task_results(reports, split, data.items)
    print_tasks(console, f"{title} · other tasks", tasks)
    marks = comparison(reports)
    return {
        "dataset": dataset,
        "protocol": protocol,
        "variant": variant,
        "quick": quick,
        "split": split.describe(),
        "validation": validation.describe(),
        "models": {
            r.spec.name: {
                "best_params": r.best_params,
                "train_seconds": r.train_seconds,
                "tuning": r.tuning.to_dict(orient="records"),
                **r.result.to_dict(),
                **marks[r.spec.name],
            }
            for r in reports
        },
        "tasks": [r.to_dict() for r in tasks],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--models", nargs="+", help="only these models (default: all)")
    parser.add_argument("--quick", action="store_true", help="small grids: a few minutes")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("RECOPS_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "benchmarks" / "results" / "offline_quality.json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console(width=200)
    specs = model_specs()
    if args.models:
        unknown = set(args.models) - {s.name for s in specs}
        if unknown:
            known = [s.name for s in specs]
            raise SystemExit(f"unknown model(s) {sorted(unknown)}; known: {known}")
        specs = [s for s in specs if s.name in args.models]
    records = [
        run_configuration(
            console, dataset, args.data_dir, protocol, variant, quick=args.quick, specs=specs
        )
        for dataset in args.datasets
        for protocol in args.protocols
        for variant in args.variants
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(records, indent=2, default=str) + "\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
