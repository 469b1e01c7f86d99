"""Offline quality benchmark: every model, tuned on validation, evaluated on test.

For each dataset × protocol × feedback variant:

1. split the interactions (global temporal 80/20, or leave-last-5-out per user) with
   one shared candidate set (items known at each query's ``now``) and new items kept
   as targets;
2. tune every model's grid on ``validation_split`` (the end of the training period);
3. refit the best parameters on the full training period and evaluate on test;
4. print a table per configuration with the slices (warm users, cold users,
   new-item targets), 95% bootstrap intervals and each model's paired difference
   to the best other model;
5. score the other tasks (item→item, query→item, category→item) for the models that
   have them.

At the end one table checks issue 11's targets for the two-tower on every
configuration: warm users ≥ every baseline on NDCG@20 and Recall@20 with coverage@20
≥ 2× recent popularity's, cold users ≥ every baseline, and the new-item slice;
a missed target shows by how much.

Results go to ``benchmarks/results/offline_quality.json``. Adding a model is one
``ModelSpec`` in :func:`model_specs`; the tune/refit/evaluate loop and the tables
are :mod:`recops.evaluation.compare`, shared with ``recops demo``.

``--scale`` instead measures the two-tower's training cost on synthetic catalogs of
10k to 1M items (10 events per item, so 10M events at 1M items): preparation time,
seconds per optimisation step and per epoch (extrapolated from the first steps), and
the process's peak memory, each size in a fresh process, with the row-wise (sparse)
optimiser and with dense Adam.

Usage::

    python benchmarks/offline_quality.py --quick
    python benchmarks/offline_quality.py --datasets ml-100k --protocols global_temporal
    python benchmarks/offline_quality.py --scale [--scale-items 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.data.loaders import load_dataset
from recops.evaluation import (
    Split,
    implicit_only,
    leave_last_n_out,
    temporal_split,
    validation_split,
)
from recops.evaluation.compare import (
    ModelRun,
    ModelSpec,
    comparison_table,
    run_model,
    slice_comparisons,
    split_table,
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


def model_specs(protocol: str = "global_temporal") -> list[ModelSpec]:
    """The models compared; the two-tower joins when its package is importable.

    The baselines are tuned on ``validation_split`` of the protocol; the two-tower
    makes its choices on its own validation window, cut the protocol's way.
    """
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
            # The model early-stops and picks its prior and tower/prior blend on its own
            # validation window (the end of the training period, as the temporal split
            # has it, or each user's last events for leave-last-n-out), so it has no
            # outer grid: one fit per configuration. One torch thread: on 2 shared
            # cores two threads ran several times slower.
            {"validation_protocol": [protocol], "validation_leave_out": [LEAVE_OUT_N]},
            {"validation_protocol": [protocol], "validation_leave_out": [LEAVE_OUT_N]},
            uses_items=True,
        )
    )
    return specs


def make_split(events: pd.DataFrame, protocol: str, items: pd.DataFrame | None = None) -> Split:
    """The test split of one protocol (the catalog's publish times join the candidates)."""
    if protocol == "global_temporal":
        return temporal_split(events, 0.8, items=items)
    return leave_last_n_out(events, n=LEAVE_OUT_N, items=items)


#: The model the targets are about, and the baseline whose coverage it must double.
CANDIDATE = "TwoTower"
COVERAGE_REFERENCE = "RecentPopular"


def target_rows(runs: Sequence[ModelRun]) -> list[dict[str, Any]]:
    """Issue 11's targets for :data:`CANDIDATE` against every other model, per slice.

    One row per slice and metric: the two-tower's mean, the best baseline's, the
    margin (negative = missed by that much) and the paired-bootstrap interval of
    the difference; for warm users also coverage@20 against twice recent
    popularity's.
    """
    from recops.evaluation import paired_bootstrap

    by_name = {r.spec.name: r for r in runs}
    model = by_name.get(CANDIDATE)
    baselines = [r for r in runs if r.spec.name != CANDIDATE]
    if model is None or not baselines:
        return []
    rows: list[dict[str, Any]] = []
    for group in ("warm", "cold", "new_items"):
        if not model.result.n_users(group):
            continue
        for metric in ("ndcg@20", "recall@20"):
            best = max(baselines, key=lambda r: r.result.mean(metric, group))
            ours, theirs = model.result.mean(metric, group), best.result.mean(metric, group)
            paired = paired_bootstrap(
                model.result.values(metric, group), best.result.values(metric, group)
            )
            rows.append(
                {
                    "slice": group,
                    "metric": metric,
                    "two_tower": ours,
                    "best_baseline": best.spec.name,
                    "baseline": theirs,
                    "margin": ours - theirs,
                    "paired": paired.difference.to_dict(),
                    "met": ours >= theirs,
                }
            )
        if group == "warm" and COVERAGE_REFERENCE in by_name:
            ours = model.result.coverage(20, group)
            needed = 2 * by_name[COVERAGE_REFERENCE].result.coverage(20, group)
            rows.append(
                {
                    "slice": group,
                    "metric": "coverage@20",
                    "two_tower": ours,
                    "best_baseline": f"2 × {COVERAGE_REFERENCE}",
                    "baseline": needed,
                    "margin": ours - needed,
                    "paired": None,
                    "met": ours >= needed,
                }
            )
    return rows


def targets_table(records: Sequence[dict[str, Any]]) -> Table:
    """The one table of the targets over every configuration run."""
    table = Table(
        title=f"issue 11 targets: {CANDIDATE} against the best baseline of each slice",
        caption="margin < 0: missed by that much; Δ: paired bootstrap 95% interval",
    )
    for column in ("configuration", "slice", "metric", CANDIDATE, "best baseline", "margin"):
        table.add_column(column)
    table.add_column("Δ 95%")
    table.add_column("met")
    for record in records:
        config = f"{record['dataset']} · {record['protocol']} · {record['variant']}"
        for row in record.get("targets", []):
            paired = row["paired"]
            interval = f"[{paired['low']:+.3f}, {paired['high']:+.3f}]" if paired else "–"
            table.add_row(
                config,
                row["slice"],
                row["metric"],
                f"{row['two_tower']:.3f}",
                f"{row['baseline']:.3f} ({row['best_baseline']})",
                f"{row['margin']:+.3f}",
                interval,
                "yes" if row["met"] else "NO",
            )
    return table


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
    split = make_split(events, protocol, data.items)
    validation = validation_split(split)
    title = f"{dataset} · {protocol} · ratings {variant}"
    console.rule(title)
    console.print(split_table(split, "test split"), split_table(validation, "validation split"))
    reports = []
    for spec in specs:
        console.print(f"[dim]{spec.name}: tuning on validation[/dim]")
        reports.append(run_model(spec, split, validation, data.items, quick=quick))
    console.print(comparison_table(title, reports))
    for r in reports:
        if (summary := fitted_choices(r.model)) is not None:
            console.print(f"[dim]{r.spec.name} chose on its validation window: {summary}[/dim]")
    tasks = task_results(reports, split, data.items)
    console.print(tasks_table(f"{title} · other tasks", tasks))
    marks = slice_comparisons(reports)
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
                "fitted": fitted_summary(r.model),
                "tuning": r.tuning.to_dict(orient="records"),
                **r.result.to_dict(),
                "comparison": {g: m[r.spec.name] for g, m in marks.items() if r.spec.name in m},
            }
            for r in reports
        },
        "targets": target_rows(reports),
        "tasks": [r.to_dict() for r in tasks],
    }


def fitted_summary(model: Any) -> dict[str, Any] | None:
    """A two-tower's ``summary_`` (what ``fit`` chose and measured), None for the rest."""
    summary = getattr(model, "summary_", None)
    if not dataclasses.is_dataclass(summary) or isinstance(summary, type):
        return None
    return dataclasses.asdict(summary)


def fitted_choices(model: Any) -> str | None:
    """One line of what the model's own validation chose (``TrainingSummary.choices``)."""
    choices = getattr(getattr(model, "summary_", None), "choices", None)
    return choices() if callable(choices) else None


def run_search_holdout(console: Console, data_dir: Path) -> list[dict[str, Any]]:
    """Query→item on queries no model trained on: MIND abstracts against titles.

    The two-tower is fitted on MIND's clicks (its query task sees titles only); it
    and BM25 over the titles are asked with each clicked test item's abstract.
    """
    from recops.evaluation.tasks import evaluate_search
    from recops.evaluation.tuning import fit_on_split
    from recops.models.baselines import BM25Search
    from recops.models.two_tower import TwoTower

    data = load_dataset("mind-small", data_dir=data_dir)
    clicks = data.interactions[data.interactions["event"] == "click"]
    split = temporal_split(implicit_only(clicks), 0.8, items=data.items)
    model = fit_on_split(TwoTower(), split, data.items)
    bm25 = BM25Search().fit(data.items)
    results = [
        evaluate_search(m, split, data.items, query_column=column)
        for column in ("abstract", "title")
        for m in (model, bm25)
    ]
    console.print(tasks_table("mind-small · query→item (abstract: held-out queries)", results))
    return [r.to_dict() for r in results]


def run_world(console: Console, quick: bool) -> dict[str, Any]:
    """The built-in world: the slices table, then new items' share of clicks and CTR."""
    from recops.data.world import WorldConfig, generate_world
    from recops.evaluation.freshness import new_item_report
    from recops.models.two_tower import TwoTower

    world, data = generate_world(WorldConfig(n_users=1_000, n_items=2_000, days=21, seed=0))
    clicks = data.interactions[data.interactions["event"] == "click"]
    # Users are asked after their first click of the test period, with it as history
    # (the real-time state): at the cutoff itself no article published later exists.
    split = temporal_split(clicks, 0.8, n_warm_history=1, items=data.items)
    validation = validation_split(split)
    title = "world (1,000 users, 2,000 items, 21 days) · global_temporal, asked after 1 click"
    console.rule(title)
    console.print(split_table(split, "test split"))
    world_specs = [
        ModelSpec("MostPopular", MostPopular, {}, {}),
        ModelSpec("RecentPopular", RecentPopular, {"window_days": [0.25, 1, 3]}, {}),
        ModelSpec("ItemKNN", ItemKNN, {"n_neighbors": [100, 300]}, {}),
        ModelSpec("EASE", EASE, {"l2": [100.0, 500.0]}, {}),
        ModelSpec("TwoTower", TwoTower, {}, {}, uses_items=True),
    ]
    runs = [run_model(spec, split, validation, data.items, quick=quick) for spec in world_specs]
    console.print(comparison_table(title, runs))
    cutoff = split.train_end
    report = new_item_report(
        world,
        clicks,
        cutoff,
        {"RecentPopular": lambda: RecentPopular(window_days=1), "TwoTower": TwoTower},
        n_requests=1_000 if quick else 5_000,
    )
    table = Table(title="world · after the training cutoff: exact CTR from the click model")
    for column in ("policy", "CTR", "share of its clicks on new items"):
        table.add_column(column)
    for policy in report.policies:
        table.add_row(policy.name, f"{policy.ctr:.4f}", f"{policy.new_item_click_share:.1%}")
    console.print(table)
    console.print(
        f"logged clicks after the cutoff on items published after it: "
        f"{report.logged_new_item_click_share:.1%} ({report.n_requests:,} requests scored)"
    )
    return {
        "split": split.describe(),
        "models": {r.spec.name: r.result.to_dict() for r in runs},
        "targets": target_rows(runs),
        "freshness": report.to_dict(),
    }


SCALE_ITEMS = (10_000, 100_000, 1_000_000)
EVENTS_PER_ITEM = 10
EVENTS_PER_USER = 40
SCALE_DAYS = 60


def synthetic_catalog(n_items: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events with Zipf-like item popularity over ``SCALE_DAYS`` days, and a catalog.

    ``EVENTS_PER_ITEM * n_items`` events by ``n_events / EVENTS_PER_USER`` users;
    titles are three words of a 20,000-word vocabulary, one or two of 50 categories.
    """
    rng = np.random.default_rng(seed)
    n_events = EVENTS_PER_ITEM * n_items
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = rng.choice(n_items, size=n_events, p=weights / weights.sum())
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, max(n_events // EVENTS_PER_USER, 1), n_events).astype(str),
            "item_id": items.astype(str),
            "timestamp": np.sort(rng.integers(0, SCALE_DAYS * 86_400, n_events)) + 1_600_000_000,
        }
    )
    words = rng.integers(0, 20_000, size=(n_items, 3))
    cats = rng.integers(0, 50, size=(n_items, 2))
    catalog = pd.DataFrame(
        {
            "item_id": np.arange(n_items).astype(str),
            "title": [f"w{a} w{b} w{c}" for a, b, c in words],
            "categories": [[f"c{a}"] if a % 2 else [f"c{a}", f"c{b}"] for a, b in cats],
        }
    )
    return events, catalog


def scale_case(n_items: int, sparse: bool, steps: int) -> dict[str, Any]:
    """One size: prepare the data, time ``steps`` training steps; peak memory of this process."""
    from recops.models.two_tower import TwoTower
    from recops.models.two_tower.training import time_steps

    events, catalog = synthetic_catalog(n_items)
    model = TwoTower(sparse_embeddings=sparse, validation_fraction=0.0, epochs=1)
    started = time.perf_counter()
    prepared = model.prepare(events, catalog)
    prepare_seconds = time.perf_counter() - started
    seconds = time_steps(prepared.data, model.config, steps)
    per_step = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
    batches = -(-len(events) // model.config.batch_size)
    return {
        "items": n_items,
        "events": len(events),
        "optimizer": "row-wise (sparse) Adam" if sparse else "dense Adam",
        "prepare_seconds": prepare_seconds,
        "steps_measured": len(seconds),
        "seconds_per_step": per_step,
        "batches_per_epoch": batches,
        "epoch_seconds": per_step * batches,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def run_scale(console: Console, sizes: Sequence[int], steps: int) -> list[dict[str, Any]]:
    """Every size × optimiser in a fresh process (so peak memory is that case's own)."""
    rows = []
    for n_items in sizes:
        for sparse in (True, False):
            console.print(f"[dim]scale: {n_items:,} items, sparse={sparse}[/dim]")
            command = [
                sys.executable,
                __file__,
                "--scale-case",
                str(n_items),
                "--steps",
                str(steps),
            ]
            out = subprocess.run(
                [*command, *([] if sparse else ["--dense"])],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    table = Table(title="two-tower training cost by catalog size (one torch thread)")
    for column in (
        "items",
        "events",
        "optimizer",
        "prepare s",
        "s / step",
        "epoch s (est.)",
        "peak GB",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['items']:,}",
            f"{r['events']:,}",
            r["optimizer"],
            f"{r['prepare_seconds']:.1f}",
            f"{r['seconds_per_step']:.3f}",
            f"{r['epoch_seconds']:.0f}",
            f"{r['peak_rss_gb']:.2f}",
        )
    console.print(table)
    console.print(
        f"epoch = median step time × batches per epoch, from the first {steps} steps; "
        "peak = the process's maximum resident memory (data, model, optimiser state)"
    )
    return rows


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
    parser.add_argument("--scale", action="store_true", help="training cost, 10k-1M items")
    parser.add_argument(
        "--extras",
        nargs="*",
        choices=("world", "search"),
        default=["world", "search"],
        help="also: the built-in world's slices and new-item CTR; MIND held-out search",
    )
    parser.add_argument("--scale-items", nargs="+", type=int, default=list(SCALE_ITEMS))
    parser.add_argument("--steps", type=int, default=30, help="steps timed per scale case")
    parser.add_argument("--scale-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.scale_case:
        print(json.dumps(scale_case(args.scale_case, not args.dense, args.steps)))
        return
    console = Console(width=200)
    if args.scale:
        rows = run_scale(console, args.scale_items, args.steps)
        out = args.output.with_name("training_scale.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
        console.print(f"wrote {out}")
        return
    if args.models:
        unknown = set(args.models) - {s.name for s in model_specs()}
        if unknown:
            known = [s.name for s in model_specs()]
            raise SystemExit(f"unknown model(s) {sorted(unknown)}; known: {known}")
    records = [
        run_configuration(
            console,
            dataset,
            args.data_dir,
            protocol,
            variant,
            quick=args.quick,
            specs=[s for s in model_specs(protocol) if not args.models or s.name in args.models],
        )
        for dataset in args.datasets
        for protocol in args.protocols
        for variant in args.variants
    ]
    extras: dict[str, Any] = {}
    if "world" in args.extras:
        extras["world"] = run_world(console, args.quick)
        records.append(
            {
                "dataset": "world",
                "protocol": "global_temporal",
                "variant": "clicks",
                "targets": extras["world"]["targets"],
            }
        )
    if "search" in args.extras and (args.data_dir / "mind-small").is_dir():
        extras["search"] = run_search_holdout(console, args.data_dir)
    console.print(targets_table(records))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"configurations": records, **extras}, indent=2, default=str) + "\n"
    )
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
