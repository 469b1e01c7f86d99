"""What the training pipeline costs: a cold run, a fully cached run, locally and on Ray.

Each executor gets a fresh artifact store, run store and model repository, then runs
the training pipeline three times with the same config:

1. **cold**: every step runs;
2. **second**: ``validate`` re-runs against the first run's statistics and
   ``champion``/``evaluate`` against the version the first run published (the rest
   hits the cache);
3. **cached**: every step but ``publish`` (never cached) is a cache hit.

It also checks that the Ray run produced the same artifacts (digests) as the local one.
Ray's start-up (``ray.init``) is timed apart.

Usage::

    python benchmarks/pipelines.py            # the demo's world (1,000 users, 21 days)
    python benchmarks/pipelines.py --quick    # a tiny world, seconds
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recops.pipelines import LocalExecutor, RunStore
from recops.pipelines.training import TrainingConfig, training_pipeline

RESULTS = Path(__file__).parent / "results" / "pipelines.json"


def config(folder: Path, quick: bool) -> TrainingConfig:
    """The demo's world and a two-tower of 3 epochs; ``quick``: a tiny world and model."""
    world: dict[str, Any] = {"n_users": 1_000, "n_items": 2_000, "days": 21, "seed": 0}
    model: dict[str, Any] = {"epochs": 3}
    if quick:
        world = {"n_users": 150, "n_items": 200, "days": 4, "seed": 1}
        model = {"dim": 8, "hidden": 16, "epochs": 2, "batch_size": 64, "prior_horizons": []}
    return TrainingConfig.model_validate(
        {
            "source": {"kind": "world", "world": world},
            "model": model,
            "evaluate": {"n_boot": 200},
            "publish": {"repository": str(folder / "models")},
        }
    )


def measure(executor: Any, cfg: TrainingConfig) -> dict[str, Any]:
    """Three runs of the pipeline: seconds per run and per step, and the digests."""
    runs = []
    for label in ("cold", "second", "cached"):
        started = time.perf_counter()
        result = executor.run(training_pipeline, config=cfg)
        seconds = time.perf_counter() - started
        runs.append(
            {
                "run": label,
                "seconds": seconds,
                "steps": {s.name: [s.status, s.seconds] for s in result.record.steps},
                "digests": {s.name: s.outputs for s in result.record.steps if s.name != "publish"},
            }
        )
    return {"runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny world and model")
    parser.add_argument("--no-ray", action="store_true", help="only the local executor")
    args = parser.parse_args()
    console = Console()
    out: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="recops-bench-pipelines-") as tmp:
        root = Path(tmp)
        local = LocalExecutor(root / "local" / "artifacts", RunStore(root / "local" / "runs.db"))
        out["local"] = measure(local, config(root / "local", args.quick))
        if not args.no_ray:
            import ray

            from recops.pipelines.ray_executor import RayExecutor

            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            out["ray_init_seconds"] = time.perf_counter() - started
            on_ray = RayExecutor(root / "ray" / "artifacts", RunStore(root / "ray" / "runs.db"))
            out["ray"] = measure(on_ray, config(root / "ray", args.quick))
            ray.shutdown()
            out["same_artifacts"] = (
                out["ray"]["runs"][0]["digests"] == out["local"]["runs"][0]["digests"]
            )
    table = Table(title="training pipeline: seconds per run, and two steps of the cold run")
    for column in ("executor", "cold", "second", "cached", "cold: train", "cold: evaluate"):
        table.add_column(column, justify="right" if column != "executor" else "left")
    for name in ("local", "ray"):
        if name not in out:
            continue
        runs = out[name]["runs"]
        steps = runs[0]["steps"]
        table.add_row(
            name,
            *(f"{r['seconds']:.2f}" for r in runs),
            f"{steps['train'][1]:.2f}",
            f"{steps['evaluate_models'][1]:.2f}",
        )
    console.print(table)
    if "ray" in out:
        console.print(
            f"ray.init: {out['ray_init_seconds']:.1f} s · same artifacts as local: "
            f"{out['same_artifacts']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
