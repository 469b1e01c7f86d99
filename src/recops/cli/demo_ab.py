"""The demo's A/B step: simulated users drive the server through an experiment, end to end.

1. a challenger (a second two-tower version) joins the model repository;
2. an experiment starts: the champion ranks through a Plackett–Luce head (so its
   exposures carry propensities below one), the challenger ranks greedily;
3. the world's users (:mod:`recops.sim.traffic`) ask the server for slates at the
   world's time after the training period and click by the world's click model;
4. ``recops experiment analyze`` reads the server's log and gives the verdict;
5. off-policy evaluation estimates the challenger's click-through rate from the
   champion's exposures alone (the challenger rescoring the candidates the champion
   chose from, as of each request);
6. the A/B estimate, the OPE estimate and the world's true CTR are printed side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from recops.data.world import World
    from recops.evaluation.splits import Split
    from recops.ope.report import OPEReport
    from recops.sim.traffic_truth import TrafficResult

EXPERIMENT = "demo-ab"
MODEL_NAME = "two_tower"
#: The champion's exploring policy: its exposures make the challenger's OPE possible.
EXPLORE = {"kind": "plackett_luce", "temperature": 0.5, "pool": 20, "explore_slots": 3}


def _challenger(champion: Any, split: Split, items: pd.DataFrame) -> Any:
    """The champion's configuration retrained with one epoch and another seed."""
    from recops.evaluation.tuning import fit_on_split
    from recops.models.two_tower import TwoTower

    params = champion.get_params() | {"epochs": 1, "seed": champion.get_params()["seed"] + 1}
    return fit_on_split(TwoTower(**params), split, items)


def _start_experiment(event_log: Path, repository: Path) -> None:
    from recops.cli.experiment import repository_resolver
    from recops.experiments.config import ExperimentConfig
    from recops.experiments.store import ExperimentStore

    config = ExperimentConfig.model_validate(
        {
            "name": EXPERIMENT,
            "control": "champion",
            "primary_metric": "clicks/impressions",
            "guardrails": [
                {"metric": "clicks/requests", "direction": "decrease", "max_relative_change": 0.05}
            ],
            "variants": [
                {"name": "champion", "model": MODEL_NAME, "version": "1", "policy": EXPLORE},
                {"name": "challenger", "model": MODEL_NAME, "version": "2"},
            ],
        }
    )
    resolve = repository_resolver(repository)
    with ExperimentStore(event_log) as store:
        store.create(config, resolve, actor="recops demo")
        store.start(EXPERIMENT, resolve, actor="recops demo")


def _drive(console: Console, world: World, out: Path, start: int, requests: int) -> TrafficResult:
    from recops.serving.process import ServerProcess
    from recops.sim.traffic import TrafficConfig, run_traffic

    # Replay: the server accepts the world's clock as each request's `now`.
    env = {"RECOPS_REPLAY": "true"}
    with ServerProcess(out / "models", out / "events.sqlite3", env=env) as server:
        config = TrafficConfig(url=server.url, start=start, max_requests=requests, concurrency=8)
        console.print(
            f"simulated users ask {server.url} for {requests:,} slates from "
            f"{_day(world, start)} on, and click by the world's click model"
        )
        result = run_traffic(world, config, progress=True)
    # Stopping the server committed the exposures it had queued.
    return result


def _day(world: World, t: int) -> str:
    return f"day {(t - world.config.start_time) / 86_400:.1f}"


def _ope(
    log_path: Path, out: Path, challenger: Any, interactions: pd.DataFrame, k: int, world: World
) -> tuple[OPEReport, float]:
    """The challenger's CTR estimated from the champion's exposures only, and its truth.

    OPE can only weigh what the champion could have shown: the target is the
    challenger ranking the candidates the champion chose from. Its true CTR comes
    from the world: the challenger's top ``k`` of each logged request's candidates,
    scored by the exact click model at the request's time.
    """
    import numpy as np

    from recops.cli.experiment_logs import read_experiment_log
    from recops.experiments.logs import shown_items
    from recops.experiments.policies import GreedyPolicy
    from recops.ope.exposures import read_exposures, write_exposures
    from recops.ope.report import evaluate_policy
    from recops.ope.rescore import score_candidates
    from recops.ope.reward_model import ActionPositionMeanModel, RewardData, cross_fit_predict
    from recops.ope.target import batch_from_ranking_policy

    exposures, responses, _ = read_experiment_log(log_path, EXPERIMENT)
    logged = exposures[exposures["variant"] == "champion"]
    path = write_exposures(shown_items(logged, responses), out / "champion-exposures.parquet")
    log = read_exposures(path)
    assert log.candidates is not None
    # Requests in the order of the log's slate ids (sorted request ids).
    firsts = logged.sort_values("request_id")
    ids = log.feedback.action_ids
    assert ids is not None
    candidates = [ids[c].tolist() for c in log.candidates]
    scores = score_candidates(
        challenger,
        firsts["unit"].astype(str).tolist(),
        firsts["timestamp"].to_numpy(dtype=np.int64),
        candidates,
        interactions,
    )
    q_hat = cross_fit_predict(ActionPositionMeanModel, RewardData.from_feedback(log.feedback), 2, 0)
    batch = batch_from_ranking_policy(
        log.feedback, log.candidates, list(scores), GreedyPolicy(slate_size=k), q_hat
    )
    report = evaluate_policy(batch, title="OPE of the challenger on the champion's exposures")
    # The truth of that target: its slates on the same requests, by the click model.
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    shown = np.asarray(candidates, dtype=object)[np.arange(len(top))[:, None], top]
    slates = world.item_index(shown.ravel()).reshape(shown.shape)
    users = world.user_index(firsts["unit"].astype(str).to_numpy(dtype=object))
    times = firsts["timestamp"].to_numpy(dtype=np.int64)
    expected = world.expected_clicks(users, slates, times)
    return report, float(expected.sum() / slates.size)


def _side_by_side(
    analysis: Any, report: OPEReport, ope_truth: float, result: TrafficResult
) -> Table:
    arm = analysis.comparison("clicks/impressions", "challenger").treatment
    chosen = report.recommendation.estimator
    estimate = next((e for e in report.estimates if e.estimator == chosen), None)
    table = Table(title="the challenger's click-through rate (clicks per impression)")
    for column in ("estimated by", "of", "estimate [95% CI]", "world's truth"):
        table.add_column(column, justify="right" if column != "estimated by" else "left")
    z = 1.959963984540054
    low, high = arm.mean - z * arm.std_error, arm.mean + z * arm.std_error
    table.add_row(
        f"A/B test, {arm.n:,} users served",
        "the challenger as served",
        f"{arm.mean:.4f} [{low:.4f}, {high:.4f}]",
        f"{result.arm('challenger').true_ctr:.4f}",
    )
    if estimate is None:
        # Poor overlap: the report trusts no estimator, and the table says so.
        overlap = f"no estimate trusted ({report.recommendation.overlap} overlap)"
        table.add_row("OPE, champion's log only", "the challenger ranking the champion's "
                      "candidates", overlap, f"{ope_truth:.4f}")  # fmt: skip
    else:
        table.add_row(
            f"OPE ({estimate.estimator}), champion's log only",
            "the challenger ranking the champion's candidates",
            f"{estimate.value:.4f} [{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]",
            f"{ope_truth:.4f}",
        )
    table.add_row(
        "A/B test", "the champion (for scale)", "", f"{result.arm('champion').true_ctr:.4f}"
    )
    return table


def _logged_clicks(log_path: Path) -> pd.DataFrame:
    """The clicks the server logged, as interactions (what its online state saw)."""
    import pandas as pd

    from recops.serving.eventlog import SQLiteEventLog

    log = SQLiteEventLog(log_path)
    rows: list[tuple[str, str, int]] = []
    try:
        after = 0
        while page := log.read(after, 50_000):
            after = page[-1][0]
            rows.extend((e.user_id, e.item_id, e.timestamp) for _, e in page if e.event == "click")
    finally:
        log.close()
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def ab_step(
    console: Console,
    out: Path,
    world: World,
    split: Split,
    items: pd.DataFrame,
    champion: Any,
    *,
    requests: int,
) -> None:
    """Run the A/B step of ``recops demo`` (see the module docstring)."""
    import pandas as pd

    from recops.cli.experiment_logs import logged_unit_table
    from recops.experiments.report import print_report
    from recops.experiments.stats import analyze

    console.rule("5 · an A/B test on the live server, its analysis, OPE and the truth")
    with console.status("training the challenger (the two-tower, one epoch, another seed)"):
        challenger = _challenger(champion, split, items)
    challenger.save(out / "models" / MODEL_NAME / "2")
    log_path = out / "events.sqlite3"
    _start_experiment(log_path, out / "models")
    console.print(
        f"experiment {EXPERIMENT!r}: champion = version 1 through a Plackett–Luce head "
        "(exploring, propensities logged), challenger = version 2, greedy; 50/50 by user"
    )
    result = _drive(console, world, out, split.train_end, requests)
    console.print(result.table())
    logged = logged_unit_table(log_path, EXPERIMENT)
    analysis = analyze(
        logged.frame,
        logged.control,
        [logged.primary_metric, "clicks/requests"],
        guardrails=logged.guardrails,
        decision="fixed",
    )
    print_report(analysis)
    console.print(f"(the same: recops experiment analyze {EXPERIMENT} --event-log {log_path})")
    k = result.config.k or world.config.slate_size
    interactions = pd.concat(
        [split.train[["user_id", "item_id", "timestamp"]], _logged_clicks(log_path)],
        ignore_index=True,
    )
    with console.status("off-policy evaluation of the challenger on the champion's exposures"):
        report, ope_truth = _ope(log_path, out, challenger, interactions, k, world)
    console.print(_side_by_side(analysis, report, ope_truth, result))
    console.print(
        "OPE weighs only what the champion could have shown: it estimates the challenger "
        "re-ranking the champion's candidates, and is checked against that policy's truth; "
        "the A/B test measures the challenger with its own retrieval.",
        soft_wrap=True,
    )
