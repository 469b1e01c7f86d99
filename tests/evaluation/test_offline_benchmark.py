"""The offline benchmark harness on a tiny split (guards the script against rot)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from rich.console import Console

from recops.evaluation.splits import temporal_split, validation_split

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "offline_quality.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offline_quality", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created.
    sys.modules["offline_quality"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["offline_quality"]
    return module


def test_every_baseline_runs_and_one_model_is_best(
    bench: ModuleType, interactions: pd.DataFrame
) -> None:
    split = temporal_split(interactions, 0.7)
    validation = validation_split(split)
    specs = [s for s in bench.model_specs() if s.name != "TwoTower"]
    assert {s.name for s in specs} >= {"MostPopular", "RecentPopular", "ItemKNN", "EASE", "ALS"}
    quick_specs = [bench.ModelSpec(s.name, s.factory, s.quick_grid, s.quick_grid) for s in specs]
    reports = [
        bench.run_model(s, split, validation, pd.DataFrame(), quick=True) for s in quick_specs
    ]
    marks = bench.slice_comparisons(reports)
    assert sum(m["is_best"] for m in marks["all"].values()) == 1
    for report in reports:
        assert report.result.n_users() == len(split)
        assert report.train_seconds >= 0


def test_targets_table_shows_the_margin_of_every_target(
    bench: ModuleType, interactions: pd.DataFrame
) -> None:
    split = temporal_split(interactions, 0.7)
    validation = validation_split(split)
    specs = [
        bench.ModelSpec("RecentPopular", bench.RecentPopular, {}, {}),
        bench.ModelSpec("MostPopular", bench.MostPopular, {}, {}),
        # Stands in for the two-tower: the table is about whichever model has that name.
        bench.ModelSpec(bench.CANDIDATE, bench.ItemKNN, {}, {}),
    ]
    runs = [bench.run_model(s, split, validation, None, quick=True) for s in specs]
    rows = bench.target_rows(runs)
    warm = {r["metric"]: r for r in rows if r["slice"] == "warm"}
    assert set(warm) == {"ndcg@20", "recall@20", "coverage@20"}
    knn = runs[2].result
    best = max(runs[0].result.mean("ndcg@20", "warm"), runs[1].result.mean("ndcg@20", "warm"))
    assert warm["ndcg@20"]["margin"] == pytest.approx(knn.mean("ndcg@20", "warm") - best)
    assert warm["coverage@20"]["baseline"] == pytest.approx(2 * runs[0].result.coverage(20, "warm"))
    assert all(r["met"] == (r["margin"] >= 0) for r in rows)
    record = {"dataset": "d", "protocol": "p", "variant": "v", "targets": rows}
    console = Console(width=200, record=True)
    console.print(bench.targets_table([record]))
    assert "margin" in console.export_text()


def test_arguments(bench: ModuleType) -> None:
    args = bench.parse_args(["--quick", "--datasets", "ml-100k", "--variants", "ge4"])
    assert args.quick and args.datasets == ["ml-100k"] and args.variants == ["ge4"]
    assert args.output.name == "offline_quality.json"
    with pytest.raises(SystemExit):
        bench.parse_args(["--protocols", "random"])
