"""Batch jobs from 1 to 2 Ray Data workers: catalog embedding and recommendation export.

A two-tower model is trained once on the built-in world; then a catalog of
``--items`` articles it never saw (embedded from their content: categories, title
words, publish time) and the world's users, each listed 25 times (their top 100),
go through :mod:`recops.pipelines.batch` in this process (torch on one thread, as a
Ray worker has, and on all cores), on one Ray worker and on two.
Ray's start-up (``ray.init``) is timed apart; each Ray row is the second of two
runs, so actor start-up and model loading are in it but not the first-call import
costs. The machine has as many cores as it has: two workers on two cores compete
with the driver and Ray's own processes.

Usage::

    python benchmarks/ray_batch.py             # 200,000 items, 50,000 user queries
    python benchmarks/ray_batch.py --quick     # 20,000 items, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from recops.data.world import WorldConfig, generate_world
from recops.models.two_tower import TwoTower
from recops.pipelines.batch import BatchResult, embed_catalog, export_recommendations

RESULTS = Path(__file__).parent / "results" / "ray_batch.json"


def train(folder: Path, quick: bool) -> tuple[Path, list[str], list[str]]:
    """A model on the world; its folder, the world's categories and users."""
    world = WorldConfig(n_users=500 if quick else 2_000, n_items=1_000 if quick else 4_000,
                        days=7, seed=0)  # fmt: skip
    _, data = generate_world(world)
    model = TwoTower(dim=32, hidden=64, epochs=1 if quick else 2, num_threads=1, seed=0)
    model.fit(data.interactions, data.items).save(folder / "model")
    categories = sorted({c for cs in data.items["categories"] for c in cs})
    return folder / "model", categories, data.users["user_id"].astype(str).tolist() * 25


def catalog(n: int, categories: list[str], seed: int = 0) -> pd.DataFrame:
    """``n`` new articles: a category or two, a title of 6 to 12 words, a publish time."""
    rng = np.random.default_rng(seed)
    words = [f"w{j}" for j in range(5_000)]
    return pd.DataFrame(
        {
            "item_id": [f"new-{j}" for j in range(n)],
            "title": [" ".join(rng.choice(words, rng.integers(6, 13))) for _ in range(n)],
            "categories": [
                list(rng.choice(categories, rng.integers(1, 3), replace=False)) for _ in range(n)
            ],
            "publish_time": 1_700_000_000 + rng.integers(0, 86_400, n),
        }
    )


def timed(job: Any, workers: int, repeat: int) -> BatchResult:
    result = job(workers)
    for _ in range(repeat - 1):
        result = job(workers)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 items, a smaller world")
    parser.add_argument("--items", type=int, default=None, help="catalog size")
    args = parser.parse_args()
    n_items = args.items or (20_000 if args.quick else 200_000)
    import ray

    console = Console()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="recops-ray-batch-") as tmp:
        folder = Path(tmp)
        model_dir, categories, users = train(folder, args.quick)
        items = catalog(n_items, categories)
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started

        def embed(workers: int | None) -> BatchResult:
            return embed_catalog(model_dir, items, folder / "vectors", workers=workers)

        def export(workers: int | None) -> BatchResult:
            return export_recommendations(model_dir, users, folder / "recs", k=100,
                                          workers=workers)  # fmt: skip

        for name, job, unit in (("embed catalog", embed, "items"),
                                ("export top-100", export, "users")):  # fmt: skip
            for threads in (1, os.cpu_count() or 1):
                torch.set_num_threads(threads)
                result = job(None)
                rows.append({"job": name, "unit": unit, **result.to_dict(), "threads": threads})
            for workers in (1, 2):
                result = timed(job, workers, 2)
                rows.append({"job": name, "unit": unit, **result.to_dict(), "threads": 1})
        ray.shutdown()
    table = Table(title=f"batch jobs: {n_items:,} new items, {len(users):,} users")
    for column in ("job", "where", "inputs", "seconds", "per second", "vs in-process, 1 thread"):
        table.add_column(column, justify="left" if column in ("job", "where") else "right")
    base = {r["job"]: r["per_second"] for r in rows if r["workers"] is None and r["threads"] == 1}
    for r in rows:
        where = (
            f"in process, {r['threads']} thread(s)"
            if r["workers"] is None
            else f"Ray, {r['workers']} worker(s)"
        )
        table.add_row(r["job"], where, f"{r['inputs']:,}", f"{r['seconds']:.2f}",
                      f"{r['per_second']:,.0f} {r['unit']}/s",
                      f"{r['per_second'] / base[r['job']]:.2f}×")  # fmt: skip
    console.print(table)
    console.print(f"ray.init: {ray_start:.1f} s; {os.cpu_count()} CPUs", highlight=False)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {"items": n_items, "users": len(users), "ray_init_s": ray_start,
           "cpus": os.cpu_count(), "rows": [{k: v for k, v in r.items() if k != "out"}
                                            for r in rows]}  # fmt: skip
    RESULTS.write_text(json.dumps(out, indent=2))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
