"""Data-parallel training on Ray Train: time from 1 to 2 workers, and the same quality.

The same two-tower and the same split of the built-in world, trained four ways:

1. **embedded, 2 threads**: one process, ``num_threads = 2``;
2. **embedded, 1 thread**: one process, one thread (the default);
3. **ray, 1 worker**: Ray Train, one worker of one thread (the embedded run,
   replayed: same batches, same draws, same weights);
4. **ray, 2 workers**: two workers of one thread, each computing half of every
   batch, the gradients averaged each step (same steps and global batch size).

For each: the training time (``summary_.seconds``, the training loop itself, on
rank 0 for Ray), the wall time of ``fit`` (with ``prepare`` and, on Ray, the start
of the workers and the checkpoint), the epochs run and recall@20 / NDCG@20 on the
test split. ``ray.init`` is timed apart.

Usage::

    python benchmarks/ray_train.py            # 2,000 users, 2,000 items, 21 days
    python benchmarks/ray_train.py --quick    # a tiny world, seconds
    python benchmarks/ray_train.py --skip-2-threads   # without the embedded 2-thread run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from recops.data.world import WorldConfig, generate_world
from recops.evaluation.protocol import evaluate
from recops.evaluation.splits import temporal_split
from recops.evaluation.tuning import fit_on_split
from recops.models.two_tower import TwoTower

RESULTS = Path(__file__).parent / "results" / "ray_train.json"

RUNS: tuple[tuple[str, dict[str, int]], ...] = (
    ("embedded, 2 threads", {"num_threads": 2, "ray_workers": 0}),
    ("embedded, 1 thread", {"num_threads": 1, "ray_workers": 0}),
    ("ray, 1 worker × 1 thread", {"num_threads": 1, "ray_workers": 1}),
    ("ray, 2 workers × 1 thread", {"num_threads": 1, "ray_workers": 2}),
)


def setup(quick: bool) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """The world's split, its catalog, the world's and the model's parameters."""
    world: dict[str, Any] = {"n_users": 2_000, "n_items": 2_000, "days": 21, "seed": 0}
    model: dict[str, Any] = {"epochs": 6, "patience": 6}
    if quick:
        world = {"n_users": 300, "n_items": 300, "days": 5, "seed": 1}
        model = {"dim": 16, "hidden": 32, "epochs": 2, "batch_size": 128, "prior_horizons": ()}
    _, data = generate_world(WorldConfig(**world))
    clicks = data.interactions[data.interactions["event"] == "click"]
    split = temporal_split(clicks, 0.8, n_warm_history=1, items=data.items)
    return split, data.items, world, model


def measure(split: Any, items: Any, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    model = fit_on_split(TwoTower(**params), split, items)
    wall = time.perf_counter() - started
    assert isinstance(model, TwoTower)
    result = evaluate(model, split, ks=(20,), n_boot=200)
    summary = model.summary_
    return {
        "train_seconds": summary.seconds,
        "fit_wall_seconds": wall,
        "epochs_run": summary.epochs_run,
        "best_epoch": summary.best_epoch,
        "train_loss": summary.train_loss,
        "recall@20": result.mean("recall@20"),
        "ndcg@20": result.mean("ndcg@20"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny world and model")
    parser.add_argument("--seed", type=int, default=0, help="the model's seed")
    parser.add_argument(
        "--skip-2-threads", action="store_true", help="leave out the embedded 2-thread run"
    )
    args = parser.parse_args()
    console = Console(width=120)
    split, items, world, model = setup(args.quick)
    out: dict[str, Any] = {
        "quick": args.quick,
        "world": world,
        "model": model,
        "n_train_events": len(split.train),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "runs": {},
    }
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out["ray_init_seconds"] = time.perf_counter() - started
    threads = torch.get_num_threads()
    for name, extra in RUNS:
        if args.skip_2_threads and extra["num_threads"] == 2:
            continue
        console.print(f"[bold]{name}[/] …")
        out["runs"][name] = measure(split, items, {**model, **extra, "seed": args.seed})
    torch.set_num_threads(threads)
    ray.shutdown()
    out["load_average_after"] = os.getloadavg()
    base = out["runs"]["embedded, 1 thread"]["train_seconds"]
    table = Table(
        title=f"two-tower training, {out['n_train_events']:,} events "
        f"(world {world['n_users']:,} users × {world['n_items']:,} items × {world['days']} days)"
    )
    for column in (
        "run",
        "train s",
        "speed-up",
        "fit wall s",
        "epochs",
        "recall@20",
        "ndcg@20",
    ):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, run in out["runs"].items():
        run["speedup_vs_1_thread"] = base / run["train_seconds"]
        table.add_row(
            name,
            f"{run['train_seconds']:.1f}",
            f"{run['speedup_vs_1_thread']:.2f}×",
            f"{run['fit_wall_seconds']:.1f}",
            f"{run['epochs_run']} (best {run['best_epoch']})",
            f"{run['recall@20']:.4f}",
            f"{run['ndcg@20']:.4f}",
        )
    console.print(table)
    console.print(
        f"ray.init: {out['ray_init_seconds']:.1f} s · load average before "
        f"{out['load_average_before'][0]:.2f}, after {out['load_average_after'][0]:.2f} "
        f"on {out['cpus']} CPUs"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
