"""``recops evaluate``: one baseline on one dataset split, with bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

# Exit code for bad input (the same code Click uses for usage errors).
BAD_INPUT = 2


def _baselines() -> dict[str, Any]:
    from recops.models.baselines import ALS, BPR, EASE, ItemKNN, MostPopular, RecentPopular

    return {
        cls.__name__.lower(): cls for cls in (MostPopular, RecentPopular, ItemKNN, EASE, ALS, BPR)
    }


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["l2=500", "half_life_days=null"]`` → ``{"l2": 500, "half_life_days": None}``.

    Values are read as JSON when they parse (numbers, ``null``, ``true``), else kept
    as strings.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param must look like NAME=VALUE (got {pair!r})")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


@app.command("evaluate")
def evaluate_command(
    dataset: Annotated[
        str, typer.Argument(help="A public dataset name (ml-100k, ...) or a recops dataset folder.")
    ],
    model: Annotated[
        str, typer.Option(help="mostpopular, recentpopular, itemknn, ease, als or bpr.")
    ] = "recentpopular",
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter NAME=VALUE; repeatable.")
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="global_temporal (80/20 by time) or leave_last_n_out.")
    ] = "global_temporal",
    min_rating: Annotated[
        float | None, typer.Option(help="Keep only events with value >= this (e.g. 4).")
    ] = None,
    k: Annotated[list[int] | None, typer.Option("--k", help="Cut-off; repeatable.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder holding public datasets ($RECOPS_DATA_DIR).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Also write the result as JSON.")] = None,
    recommendations: Annotated[
        Path | None,
        typer.Option(
            help="Score these lists (user_id,rank,item_id CSV from `recops recommend`, made "
            "from the split's training period) instead of fitting --model."
        ),
    ] = None,
) -> None:
    """Fit a baseline on the training period and report metrics with 95% intervals.

    Every model is scored on the split's shared candidates (items known at each
    user's request time) in slices: warm users, cold users, new-item targets. With
    --recommendations, exported lists are scored the same way, so `recops train`
    on the training period then `recops recommend --now CUTOFF` can be checked
    against the benchmark.
    """
    console = Console()
    try:
        result, split = _run(
            dataset, model, param or [], protocol, min_rating, k, data_dir, recommendations
        )
    except (ValueError, FileNotFoundError, KeyError) as err:
        Console(stderr=True).print(f"error: {err}", style="red", markup=False, highlight=False)
        raise typer.Exit(BAD_INPUT) from None
    from recops.evaluation.compare import SLICE_LABELS, split_table
    from recops.evaluation.protocol import GROUPS

    console.print(split_table(split, f"{dataset} split"))
    table = Table(
        title=f"{result.model} on {dataset} ({protocol})",
        caption="new items: scored against each user's new-item targets only; "
        f"coverage over the {result.n_candidates} shared candidates",
    )
    table.add_column("metric")
    for g in GROUPS:
        table.add_column(f"{SLICE_LABELS[g]} (n={result.n_users(g)})")
    summaries = {g: result.summary(g) for g in GROUPS}
    for metric in summaries["all"]:
        cells = [
            f"{iv.mean:.4f} [{iv.low:.4f}, {iv.high:.4f}]"
            if (iv := summaries[g].get(metric))
            else "–"
            for g in GROUPS
        ]
        table.add_row(metric, *cells)
    for cut in result.ks:
        table.add_row(f"coverage@{cut}", *(f"{result.coverage(cut, g):.4f}" for g in GROUPS))
    console.print(table)
    if output is not None:
        output.write_text(json.dumps({"split": split.describe(), **result.to_dict()}, indent=2))
        console.print(f"wrote {output}")


def _run(
    dataset: str,
    model: str,
    pairs: list[str],
    protocol: str,
    min_rating: float | None,
    ks: list[int] | None,
    data_dir: Path | None,
    recommendations: Path | None = None,
) -> tuple[Any, Any]:
    from recops.data.schema import Dataset
    from recops.evaluation import evaluate, implicit_only, leave_last_n_out, temporal_split

    baselines = _baselines()
    if model.lower() not in baselines:
        raise ValueError(f"--model must be one of {sorted(baselines)} (got {model!r})")
    if protocol not in ("global_temporal", "leave_last_n_out"):
        raise ValueError(
            f"--protocol must be global_temporal or leave_last_n_out (got {protocol!r})"
        )
    if Path(dataset).is_dir():
        data = Dataset.load(dataset)
    else:
        from recops.data.loaders import load_dataset

        data = load_dataset(dataset, data_dir=data_dir)
    events = implicit_only(data.interactions, min_rating)
    items = data.items if len(data.items) else None
    split = (
        temporal_split(events, items=items)
        if protocol == "global_temporal"
        else leave_last_n_out(events, items=items)
    )
    if recommendations is not None:
        import pandas as pd

        from recops.evaluation.protocol import score_recommendations

        if not recommendations.is_file():
            raise FileNotFoundError(f"no such file: {recommendations}")
        lists = pd.read_csv(recommendations, dtype={"user_id": str, "item_id": str})
        name = recommendations.name
        return score_recommendations(lists, split, tuple(ks or (10, 20)), name=name), split
    fitted = baselines[model.lower()](**parse_params(pairs)).fit(split.train)
    return evaluate(fitted, split, ks=tuple(ks or (10, 20))), split
