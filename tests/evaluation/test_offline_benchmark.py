"""The offline benchmark harness on a tiny split (guards the script against rot)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

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
    marks = bench.comparison(reports)
    assert sum(m["is_best"] for m in marks.values()) == 1
    for report in reports:
        assert report.result.n_users() == len(split)
        assert report.train_seconds >= 0


def test_arguments(bench: ModuleType) -> None:
    args = bench.parse_args(["--quick", "--datasets", "ml-100k", "--variants", "ge4"])
    assert args.quick and args.datasets == ["ml-100k"] and args.variants == ["ge4"]
    assert args.output.name == "offline_quality.json"
    with pytest.raises(SystemExit):
        bench.parse_args(["--protocols", "random"])
