"""Comparing models on one split: tune, refit, evaluate, tabulate."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from recops.evaluation.compare import (
    ModelSpec,
    comparison,
    comparison_table,
    run_model,
    slice_verdicts,
    split_table,
    task_results,
    tasks_table,
)
from recops.evaluation.splits import temporal_split, validation_split
from recops.models.baselines import ItemKNN, MostPopular, RecentPopular


def _render(table: object) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


def test_run_model_tunes_on_validation_and_evaluates_on_test(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    validation = validation_split(split)
    spec = ModelSpec("Recent", RecentPopular, {"window_days": [0.01, 1.0]}, {})
    run = run_model(spec, split, validation, None, quick=False)
    assert run.best_params["window_days"] in (0.01, 1.0)
    assert set(run.tuning["window_days"]) == {0.01, 1.0}
    assert run.result.n_users() == len(split)
    quick = run_model(spec, split, validation, None, quick=True)
    assert quick.best_params == {}


def test_table_marks_exactly_one_best_and_compact_drops_columns(
    interactions: pd.DataFrame,
) -> None:
    split = temporal_split(interactions, 0.7)
    validation = validation_split(split)
    specs = [
        ModelSpec("Popular", MostPopular, {}, {}),
        ModelSpec("KNN", ItemKNN, {"n_neighbors": [10]}, {}),
    ]
    runs = [run_model(s, split, validation, None, quick=False) for s in specs]
    marks = comparison(runs)
    assert sum(m["is_best"] for m in marks.values()) == 1
    full = _render(comparison_table("t", runs))
    compact = _render(comparison_table("t", runs, compact=True))
    groups = [g for g in ("warm", "cold") if runs[0].result.n_users(g)]
    assert groups, "the random split has warm or cold users"
    for group in groups:
        assert f"{group} NDCG@20" in full and f"{group}" in compact.split("┡")[0]
        marks = comparison(runs, group=group)
        assert sum(m["is_best"] for m in marks.values()) == 1
        assert {m["best_other"] for m in marks.values()} == {"Popular", "KNN"}
    assert "best params" in full and "ΔNDCG@20" in full and "warm R@20" in full
    assert "best params" not in compact and "warm R@20" not in compact
    assert full.count(" * │") == len(groups)
    narrow = Console(width=80, record=True)
    narrow.print(comparison_table("t", runs, compact=True))
    narrow_text = narrow.export_text()
    assert max(map(len, narrow_text.splitlines())) <= 80
    assert "│ Popular " in narrow_text and "NDCG@20" in narrow_text
    assert "[" not in compact.split("┃")[-1], "compact cells carry no intervals"
    verdicts = slice_verdicts(runs)
    assert len(verdicts) == len(groups)
    for group, line in zip(groups, verdicts, strict=True):
        best = next(n for n, m in comparison(runs, group=group).items() if m["is_best"])
        iv = next(r for r in runs if r.spec.name == best).result.summary(group)["ndcg@20"]
        assert line.startswith(f"{group} (") and f"{best} NDCG@20 {iv.mean:.3f} [" in line
        assert "over " in line and "(paired bootstrap)" in line


def test_split_table_names_every_fact(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    text = _render(split_table(split, "test split"))
    assert "shared candidates" in text and "warm" in text and "new-item" in text
    assert "{" not in text, "no raw dict for people"


def test_task_results_include_the_task_baselines(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions, 0.7)
    items = pd.DataFrame(
        {
            "item_id": sorted(interactions["item_id"].unique()),
            "title": [f"title {i}" for i in range(interactions["item_id"].nunique())],
            "categories": [
                ["a"] if i % 2 else ["b"] for i in range(interactions["item_id"].nunique())
            ],
        }
    )
    results = task_results([], split, items)
    names = [r.model for r in results]
    assert any("BM25" in n for n in names) and any("Category" in n for n in names)
    assert "requests" in _render(tasks_table("tasks", results))
