"""Impression-ranking benchmark, the MIND protocol: AUC, MRR, nDCG@5 and nDCG@10.

On MIND (``--data-dir``, default ``RECOPS_DATA_DIR`` or ``../shared/data``; the
official MIND-small from ``recops data fetch mind-small`` works the same), every
model trains on the events before the 80% quantile of the impressions' times and
ranks each later impression's shown candidates for its user
(:mod:`recops.evaluation.impressions`):

* MostPopular; RecentPopular with its window chosen on a validation split (the same
  protocol inside the training period, scored by AUC); ItemKNN;
* the two-tower trained with the logged impressions, one row per exposure correction
  ``η`` (``exposure_debias``): an ablation read on the test, nothing chosen on it.

Two candidate sets, the same for every model: all shown items (items a model does
not know rank below its known ones, ties at random), and the shown items clicked in
training, which every model knows. Each row gives the mean over impressions with its
95% bootstrap interval and the paired bootstrap against the best baseline on AUC.
Results go to ``benchmarks/results/impressions.json``.

Usage::

    python benchmarks/impressions.py [--etas 0 0.5 1] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from recops.data.loaders import load_dataset
from recops.evaluation import Interval, paired_bootstrap
from recops.evaluation.impressions import (
    METRICS,
    ImpressionResult,
    ImpressionSplit,
    evaluate_impressions,
    impression_split,
)
from recops.models.base import Recommender
from recops.models.baselines import ItemKNN, MostPopular, RecentPopular
from recops.models.two_tower import TwoTower

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "impressions.json"
#: RecentPopular windows tried on the validation split (news goes stale in days).
WINDOWS = (1, 3, 7)
console = Console(width=max(Console().width, 120))


def tuned_recent_popular(split: ImpressionSplit) -> tuple[RecentPopular, dict[int, float]]:
    """RecentPopular with the window that ranks a validation split's impressions best."""
    validation = impression_split(split.train)
    known = set(validation.train_clicks["item_id"])
    scores = {}
    for days in WINDOWS:
        model = RecentPopular(window_days=days).fit(validation.train_clicks)
        result = evaluate_impressions(model, validation, candidates=known, n_boot=10)
        scores[days] = result.summary()["auc"]
    best = max(scores, key=lambda d: (scores[d], -d))
    return RecentPopular(window_days=best), scores


def fit(model: Recommender, split: ImpressionSplit, items: Any) -> float:
    """Fit on the training period (the two-tower with its impressions); the seconds."""
    start = time.perf_counter()
    if isinstance(model, TwoTower):
        model.fit(split.train_clicks, items, impressions=split.train_impressions)
    else:
        model.fit(split.train_clicks)
    return time.perf_counter() - start


def table(title: str, results: list[ImpressionResult], baselines: int) -> Table:
    """One row per model; Δ AUC against the best of the first ``baselines`` rows."""
    out = Table(title=title)
    for col in ("model", "known", "AUC [95%]", "MRR", "nDCG@5", "nDCG@10", "Δ AUC [95%]"):
        out.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    best = max(results[:baselines], key=lambda r: r.summary()["auc"])
    for r in results:
        if r is best:
            delta = "best baseline"
        else:
            a, b = r.per_impression["auc"], best.per_impression["auc"]
            both = ~(np.isnan(a) | np.isnan(b))
            delta = _cell(paired_bootstrap(a[both], b[both]).difference, signed=True)
        means = [f"{r.interval(m).mean:.4f}" for m in METRICS[1:]]
        out.add_row(r.model, f"{r.known_share:.0%}", _cell(r.interval("auc")), *means, delta)
    return out


def _cell(interval: Interval, signed: bool = False) -> str:
    """The mean and its 95% interval."""
    f = "+.4f" if signed else ".4f"
    return f"{interval.mean:{f}} [{interval.low:{f}}, {interval.high:{f}}]"


def run(data_dir: Path, etas: list[float]) -> dict[str, Any]:
    data = load_dataset("mind-small", data_dir=data_dir)
    split = impression_split(data.interactions)
    n_test = split.test["impression_id"].nunique()
    console.print(
        f"MIND ({data_dir / 'mind-small'}): {len(split.train):,} training events, "
        f"{n_test:,} impressions ranked after {split.cutoff}"
    )
    recent, windows = tuned_recent_popular(split)
    console.print(
        "RecentPopular's window on validation (AUC): "
        + ", ".join(f"{d} d {s:.4f}" for d, s in windows.items())
    )
    makers: list[tuple[str, Callable[[], Recommender]]] = [
        ("MostPopular", MostPopular),
        (f"RecentPopular ({recent.window_days:g} d)", lambda: recent),
        ("ItemKNN", ItemKNN),
    ] + [(f"TwoTower η={eta:g}", lambda eta=eta: TwoTower(exposure_debias=eta)) for eta in etas]
    known = set(split.train_clicks["item_id"])
    by_set: dict[str, list[ImpressionResult]] = {"all shown": [], "clicked in training": []}
    seconds = {}
    for name, make in makers:
        model = make()
        seconds[name] = fit(model, split, data.items)
        console.print(f"  {name} fitted in {seconds[name]:.1f} s")
        by_set["all shown"].append(evaluate_impressions(model, split, name=name))
        by_set["clicked in training"].append(
            evaluate_impressions(model, split, name=name, candidates=known)
        )
    for label, results in by_set.items():
        console.print(table(f"MIND impressions, candidates: {label}", results, baselines=3))
    return {
        "dataset": str(data_dir / "mind-small"),
        "cutoff": split.cutoff,
        "recent_popular_windows": windows,
        "fit_seconds": seconds,
        **{label: [r.to_dict() for r in results] for label, results in by_set.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("RECOPS_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.data_dir / "mind-small").is_dir():
        parser.error(f"no MIND folder at {args.data_dir / 'mind-small'} (see --data-dir)")
    results = run(args.data_dir, args.etas)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
