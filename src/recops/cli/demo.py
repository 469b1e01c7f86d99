"""``recops demo``: the whole flow of VISION.md on the built-in world, in one command.

1. **world**: generate the seeded news-like site (ground truth included) and its logs;
2. **train + evaluate**: train the two-tower model and the baselines on the clicks of
   the first 80% of the period, tune each on a validation window, and print the
   comparison on the last 20% with 95% intervals;
3. **serve**: put the model in a model repository, start ``recops serve`` on a
   loopback port, show a recommendation changing after a click, and load-test it;
4. **off-policy evaluation**: log traffic under a stochastic policy of the current
   model, estimate a challenger's CTR off-policy, and print it next to the truth;
5. **A/B test on the server**: simulated users drive the server through an experiment
   (champion against a challenger version), the server logs exposures, the analysis
   gives the verdict, OPE estimates the challenger from the champion's exposures, and
   both stand beside the world's true CTR (:mod:`recops.cli.demo_ab`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    import pandas as pd

    from recops.data.world import World
    from recops.evaluation.compare import ModelRun
    from recops.evaluation.splits import Split

MODEL_NAME = "two_tower"
# Off-policy step: slots per slate and candidates per request. Exact Plackett–Luce
# propensities enumerate ordered prefixes, so these stay small enough to be instant.
SLATE = 3
CANDIDATES = 10


def _world(console: Console, out: Path, users: int, items: int, days: int, seed: int) -> Any:
    from recops.data.world import WorldConfig, generate_world

    console.rule("1 · the world")
    config = WorldConfig(n_users=users, n_items=items, days=days, seed=seed)
    world, dataset = generate_world(config, progress=True)
    dataset.save(out / "data")
    events = dataset.interactions
    clicks = events[events["event"] == "click"]
    console.print(
        f"{config.n_users:,} users, {config.n_items:,} items, {config.days} days: "
        f"{(events['event'] == 'impression').sum():,} impressions, {len(clicks):,} clicks "
        f"→ {out / 'data'}"
    )
    return world, dataset, clicks


def _model_specs(quick: bool) -> list[Any]:
    from recops.evaluation.compare import ModelSpec
    from recops.models.baselines import ALS, EASE, ItemKNN, MostPopular, RecentPopular
    from recops.models.two_tower import TwoTower

    epochs = [3] if quick else [8]
    return [
        ModelSpec("MostPopular", MostPopular, {}, {}),
        ModelSpec(
            "RecentPopular", RecentPopular, {"window_days": [0.25, 1, 3]}, {"window_days": [1]}
        ),
        ModelSpec("ItemKNN", ItemKNN, {"n_neighbors": [100, 300]}, {"n_neighbors": [100]}),
        ModelSpec("EASE", EASE, {"l2": [100.0, 500.0]}, {"l2": [500.0]}),
        ModelSpec("ALS", ALS, {"factors": [32, 64]}, {"factors": [32]}),
        ModelSpec("TwoTower", TwoTower, {"epochs": epochs}, {"epochs": epochs}, uses_items=True),
    ]


def _train_and_evaluate(
    console: Console, clicks: pd.DataFrame, items: pd.DataFrame, quick: bool
) -> tuple[list[ModelRun], Split]:
    from recops.evaluation import temporal_split, validation_split
    from recops.evaluation.compare import (
        comparison_table,
        run_model,
        slice_verdicts,
        split_table,
    )

    console.rule("2 · train and evaluate (global temporal split, 80/20 by time)")
    # Users are asked after their first click of the test period, with it as history
    # (the real-time state): articles published after the cutoff can then be targets.
    split = temporal_split(clicks, 0.8, n_warm_history=1, items=items)
    validation = validation_split(split)
    console.print(split_table(split, "test split"))
    runs = []
    for spec in _model_specs(quick):
        with console.status(f"{spec.name}: tuning on the validation window, then training"):
            runs.append(run_model(spec, split, validation, items, quick=quick))
        console.print(f"  {spec.name} done in {runs[-1].train_seconds:.1f} s")
    console.print(
        comparison_table("recops demo · clicks on the built-in world", runs, compact=True)
    )
    for line in slice_verdicts(runs):
        console.print(f"  {line}", highlight=False)
    return runs, split


def _freshness(
    console: Console, world: World, clicks: pd.DataFrame, split: Split, quick: bool
) -> None:
    """News goes stale in hours: the exact CTR with and without the articles published later."""
    from recops.evaluation.freshness import new_item_report
    from recops.models.baselines import RecentPopular
    from recops.models.two_tower import TwoTower

    epochs = 3 if quick else 8
    with console.status("the world after the cutoff: exact CTR of each policy, new items or not"):
        report = new_item_report(
            world,
            clicks,
            split.train_end,
            {
                "RecentPopular": lambda: RecentPopular(window_days=1),
                "TwoTower": lambda: TwoTower(epochs=epochs),
            },
            n_requests=500 if quick else 2_000,
        )
    table = Table(title="after the training cutoff: exact CTR from the world's click model")
    for column in ("policy", "CTR", "share of its clicks on articles published later"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for policy in report.policies:
        table.add_row(policy.name, f"{policy.ctr:.4f}", f"{policy.new_item_click_share:.1%}")
    console.print(table)
    console.print(
        f"{report.logged_new_item_click_share:.0%} of the clicks after the cutoff went to "
        "articles published after it: the two-tower embeds them from their content "
        "(add_items), without retraining."
    )


def _recommendation_table(title: str, reply: dict[str, Any], categories: dict[str, str]) -> Table:
    table = Table(title=title)
    for column in ("#", "item", "category", "score"):
        table.add_column(column)
    for rank, (item, score) in enumerate(zip(reply["items"], reply["scores"], strict=True), 1):
        table.add_row(str(rank), item, categories.get(item, "?"), f"{score:.3f}")
    return table


def _serve(
    console: Console, out: Path, model: Any, dataset: Any, clicks: pd.DataFrame, seconds: float
) -> None:
    import httpx

    from recops.serving.process import ServerProcess
    from recops.sim.loadtest import LoadTestConfig, Traffic, report_table, run_load_test

    console.rule("3 · serve: real-time recommendations, a click, a load test")
    repository = out / "models"
    version_dir = repository / MODEL_NAME / "1"
    model.save(version_dir)
    console.print(f"model saved to {version_dir}")
    items = dataset.items
    categories = {
        str(i): str(c[0]) if len(c) else "?"
        for i, c in zip(items["item_id"], items["categories"], strict=True)
    }
    with ServerProcess(repository, out / "events.sqlite3") as server:
        console.print(f"server ready at {server.url} (docs: {server.url}/docs)")
        client = httpx.Client(base_url=server.url, timeout=30.0)
        user = "demo-visitor"
        before = client.post("/v1/recommend", json={"user_id": user, "k": 5}).json()
        console.print(_recommendation_table(f"{user}, no history yet", before, categories))
        # Click an item of a category the cold-start list does not show, so the change is visible.
        shown = {categories.get(i) for i in before["items"]}
        popular = clicks["item_id"].value_counts().index
        target = next((i for i in popular if categories.get(i) not in shown), popular[0])
        event = {"user_id": user, "item_id": target, "event": "click"}
        client.post("/v1/events", json={"events": [event]}).raise_for_status()
        after = client.post("/v1/recommend", json={"user_id": user, "k": 5}).json()
        console.print(
            f"{user} clicks {target} ({categories.get(target)}); the very next request, "
            "right after one click on it:",
            soft_wrap=True,
        )
        console.print(_recommendation_table(f"{user}, after the click", after, categories))
        with console.status(f"load test: {seconds:.0f} s at concurrency 8"):
            config = LoadTestConfig(url=server.url, duration_s=seconds, warmup_s=1.0)
            report = run_load_test(config, Traffic.from_frames(clicks, items))
        console.print(report_table(report))


def _ope(console: Console, world: World, runs: list[ModelRun], clicks: pd.DataFrame) -> None:
    from recops.experiments.policies import GreedyPolicy, PlackettLucePolicy
    from recops.ope.simulation import recommender_score_fn, run_ope_demo, standardized

    console.rule("4 · off-policy evaluation: know before the A/B test")
    by_name = {run.spec.name: run.model for run in runs}
    current = standardized(recommender_score_fn(by_name["TwoTower"], world, clicks))
    challenger = standardized(recommender_score_fn(by_name["EASE"], world, clicks))
    with console.status("logging traffic under the current model's stochastic policy"):
        result = run_ope_demo(
            world,
            current,
            challenger,
            PlackettLucePolicy(slate_size=SLATE, temperature=1.0),
            GreedyPolicy(slate_size=SLATE),
            n_requests=3000,
            n_candidates=CANDIDATES,
        )
    console.print(
        f"current policy: Plackett–Luce (τ=1) over the two-tower's top {CANDIDATES}, "
        f"{SLATE} slots; challenger: EASE, greedy top {SLATE}"
    )
    console.print(result.report.table())
    console.print(
        f"logged CTR {result.logged_ctr:.4f} · current true CTR {result.current_true_ctr:.4f} · "
        f"challenger true CTR {result.challenger_true_ctr:.4f}"
    )


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the world's data, the model repository and logs.")
    ] = Path("recops-demo"),
    users: Annotated[int, typer.Option(min=50, help="Users in the world.")] = 1_000,
    items: Annotated[int, typer.Option(min=100, help="Items in the world.")] = 2_000,
    days: Annotated[int, typer.Option(min=3, max=365, help="Simulated days.")] = 21,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world.")] = 0,
    quick: Annotated[bool, typer.Option(help="Smaller grids and fewer epochs.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server and load-test it.")
    ] = True,
    ope: Annotated[
        bool, typer.Option("--ope/--no-ope", help="Run the off-policy evaluation step.")
    ] = True,
    loadtest_seconds: Annotated[
        float, typer.Option(min=1.0, max=600.0, help="Length of the load test.")
    ] = 5.0,
    ab: Annotated[
        bool, typer.Option("--ab/--no-ab", help="Run the A/B test on the server (needs --serve).")
    ] = True,
    ab_requests: Annotated[
        int, typer.Option(min=200, help="Slates the simulated users ask for in the A/B test.")
    ] = 6000,
    ct: Annotated[
        bool,
        typer.Option(
            "--ct/--no-ct",
            help="Run the continuous-training loop on a drifting world (needs --serve; "
            "`recops ct demo` runs it alone).",
        ),
    ] = True,
) -> None:
    """Generate the built-in world, train and evaluate, serve, evaluate off-policy, A/B test,
    and run the continuous-training loop (drift → retrain → gate → A/B → promote).

    Everything runs locally on embedded defaults (no server to install, no network,
    no GPU); outputs go to OUT.
    """
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    world, dataset, clicks = _world(console, out, users, items, days, seed)
    runs, split = _train_and_evaluate(console, clicks, dataset.items, quick)
    _freshness(console, world, clicks, split, quick)
    two_tower = next(run.model for run in runs if run.spec.name == "TwoTower")
    if serve:
        _serve(console, out, two_tower, dataset, clicks, loadtest_seconds)
    if ope:
        _ope(console, world, runs, clicks)
    if serve and ab:
        from recops.cli.demo_ab import ab_step

        requests = ab_requests if not quick else min(ab_requests, 1500)
        ab_step(console, out, world, split, dataset.items, two_tower, requests=requests)
    if serve and ct:
        from recops.cli.demo_ct import ct_step

        ct_step(console, out, seed=seed)
    console.rule("done")
    console.print(f"{time.perf_counter() - started:.0f} s in all; outputs in {out.resolve()}")
