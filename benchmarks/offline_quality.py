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
``ModelSpec`` in :func:`model_specs`; the tune/refit/evaluate loop and the tables
are :mod:`recops.evaluation.compare`, shared with ``recops demo``.

Usage::

    python benchmarks/offline_quality.py --quick
    python benchmarks/offline_quality.py --datasets ml-100k --protocols global_temporal
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from recops.data.loaders import load_dataset
from recops.evaluation import (
    Split,
    implicit_only,
    leave_last_n_out,
    temporal_split,
    validation_split,
)
from recops.evaluation.compare import (
    ModelSpec,
    comparison,
    comparison_table,
    run_model,
    task_results,
    tasks_table,
)
from recops.models.baselines import ALS, BPR, EASE, ItemKNN, MostPopular, RecentPopular

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ml-100k", "ml-latest-small")
PROTOCOLS = ("global_temporal", "leave_last_n_out")
# Variant name -> minimum rating kept (None: every rating is an interaction).
VARIANTS: dict[str, float | None] = {"all": None, "ge4": 4.0}
LEAVE_OUT_N = 5


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
            # The model early-stops and picks its tower/prior blend on its own validation
            # window (the end of the training period), so its grid stays small. One torch
            # thread: on 2 shared cores two threads ran several times slower.
            {"temperature": [0.05, 0.1]},
            {},
            uses_items=True,
        )
    )
    return specs


def make_split(events: pd.DataFrame, protocol: str) -> Split:
    """The test split of one protocol."""
    if protocol == "global_temporal":
        return temporal_split(events, 0.8)
    return leave_last_n_out(events, n=LEAVE_OUT_N)


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
    console.print(comparison_table(title, reports))
    tasks = task_results(reports, split, data.items)
    console.print(tasks_table(f"{title} · other tasks", tasks))
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
