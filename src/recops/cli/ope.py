"""``recops ope``: estimate a new policy's value from logs of the current one."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recops.cli.app import app

if TYPE_CHECKING:
    import numpy as np

    from recops.experiments.policies import RankingPolicy
    from recops.ope.batch import OPEBatch
    from recops.ope.exposures import ExposureLog
    from recops.ope.feedback import LoggedFeedback
    from recops.ope.report import OPEReport


class LogFormat(StrEnum):
    """Formats ``--logs`` can be in."""

    obd = "obd"
    exposures = "exposures"


class RewardModelKind(StrEnum):
    """Reward models for DM and the DR family."""

    mean = "mean"
    logistic = "logistic"
    none = "none"


class IntervalKind(StrEnum):
    """Confidence-interval methods."""

    normal = "normal"
    bootstrap = "bootstrap"


class RankingKind(StrEnum):
    """Ranking policies a target can apply to candidate scores."""

    greedy = "greedy"
    epsilon_greedy = "epsilon-greedy"
    plackett_luce = "plackett-luce"


def _load_npy(path: Path, what: str) -> np.ndarray:
    import numpy as np

    if path.suffix != ".npy":
        raise ValueError(f"{path}: {what} must be a .npy file (got '{path.suffix}')")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    # allow_pickle=False: these are numbers; never unpickle.
    return np.load(path, allow_pickle=False)


def _reward_model(
    feedback: LoggedFeedback, kind: RewardModelKind, folds: int, seed: int
) -> np.ndarray | None:
    from recops.ope.reward_model import (
        ActionPositionMeanModel,
        LogisticRewardModel,
        RewardData,
        cross_fit_predict,
    )

    if kind is RewardModelKind.none:
        return None
    factory = ActionPositionMeanModel if kind is RewardModelKind.mean else LogisticRewardModel
    return cross_fit_predict(factory, RewardData.from_feedback(feedback), folds, seed)


def _ranking_policy(
    kind: RankingKind, slate_size: int, temperature: float, epsilon: float
) -> RankingPolicy:
    from recops.experiments.policies import (
        EpsilonGreedyPolicy,
        GreedyPolicy,
        PlackettLucePolicy,
    )

    if kind is RankingKind.greedy:
        return GreedyPolicy(slate_size=slate_size)
    if kind is RankingKind.epsilon_greedy:
        return EpsilonGreedyPolicy(slate_size=slate_size, epsilon=epsilon)
    return PlackettLucePolicy(slate_size=slate_size, temperature=temperature)


def _ranking_batch(
    log: ExposureLog,
    policy: RankingPolicy,
    target_scores: Path | None,
    q_hat: np.ndarray | None,
) -> OPEBatch:
    from recops.ope.target import batch_from_ranking_policy

    if log.candidates is None:
        raise ValueError(
            "--ranking-policy needs an exposure log with a `candidates` column "
            "(the candidates each request was ranked from)"
        )
    if target_scores is not None:
        scores = list(_load_npy(target_scores, "--target-scores"))
    elif log.candidate_scores is not None:
        scores = log.candidate_scores
    else:
        raise ValueError(
            "--ranking-policy needs candidate scores: a `candidate_scores` column in the "
            "log, or --target-scores FILE.npy (one row per request)"
        )
    return batch_from_ranking_policy(log.feedback, log.candidates, scores, policy, q_hat)


def _print_report(report: OPEReport, out_dir: Path) -> None:
    from rich.console import Console

    rec = report.recommendation
    console = Console()
    console.print(report.table())
    console.print(f"Recommendation: {rec.estimator or 'none'} — {rec.reason}")
    for warning in rec.warnings:
        console.print(f"Warning: {warning}")
    console.print(f"Wrote {out_dir / 'report.json'} and {out_dir / 'report.html'}")


@app.command()
def ope(
    logs: Path = typer.Option(..., "--logs", help="Logged feedback: OBD CSV/folder or exposures."),
    action_dist: Path | None = typer.Option(
        None,
        "--action-dist",
        "--policy",
        help=(
            "Target policy: .npy of shape (n_items, n_positions), or "
            "(n_rows, n_items, n_positions) for a context-dependent policy. Items are "
            "OBD item_ids, or for exposures the sorted distinct item ids."
        ),
    ),
    ranking_policy: RankingKind | None = typer.Option(
        None,
        help=(
            "Instead of --action-dist (exposures with candidates): the target ranks each "
            "request's candidates with this policy, on --target-scores or the logged scores."
        ),
    ),
    target_scores: Path | None = typer.Option(
        None, help="With --ranking-policy: .npy (n_requests, n_candidates) of a model's scores."
    ),
    temperature: float = typer.Option(1.0, min=1e-6, help="Plackett–Luce temperature."),
    epsilon: float = typer.Option(0.1, min=0.0, max=1.0, help="ε-greedy exploration."),
    fmt: LogFormat = typer.Option(LogFormat.obd, "--format", help="Format of --logs."),
    behavior_policy: str = typer.Option("random", help="OBD: logging policy folder."),
    campaign: str = typer.Option("all", help="OBD: campaign."),
    reward_model: RewardModelKind = typer.Option(
        RewardModelKind.mean, help="Reward model for DM/DR (cross-fitted); none: IPS only."
    ),
    folds: int = typer.Option(2, min=2, help="Cross-fitting folds."),
    interval: IntervalKind = typer.Option(IntervalKind.normal, help="Interval method."),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="1 - confidence level."),
    n_bootstrap: int = typer.Option(1000, min=2, help="Bootstrap resamples."),
    seed: int = typer.Option(0, help="Seed for folds and bootstrap."),
    truth: float | None = typer.Option(
        None, help="Known true value (e.g. an on-policy CTR), drawn in the plot."
    ),
    out_dir: Path = typer.Option(Path("ope_report"), help="Where report.json/html go."),
    as_json: bool = typer.Option(False, "--json", help="Print the estimates as one JSON object."),
) -> None:
    """Estimate a target policy's value from logged bandit feedback (DM, IPS, SNIPS, DR, ...)."""
    from recops.ope.batch import OPEBatch
    from recops.ope.exposures import read_exposures
    from recops.ope.feedback import read_obd
    from recops.ope.report import evaluate_policy

    try:
        if (action_dist is None) == (ranking_policy is None):
            raise ValueError("give exactly one target: --action-dist FILE or --ranking-policy")
        if fmt is LogFormat.obd:
            log = None
            feedback = read_obd(logs, behavior_policy=behavior_policy, campaign=campaign)
        else:
            log = read_exposures(logs)
            feedback = log.feedback
        q_hat = _reward_model(feedback, reward_model, folds, seed)
        if action_dist is not None:
            dist = _load_npy(action_dist, "--action-dist")
            batch = OPEBatch.from_action_dist(feedback, dist, q_hat)
            target_name = action_dist.name
        else:
            if log is None:
                raise ValueError("--ranking-policy needs --format exposures")
            assert ranking_policy is not None
            policy = _ranking_policy(ranking_policy, feedback.len_list, temperature, epsilon)
            batch = _ranking_batch(log, policy, target_scores, q_hat)
            target_name = ranking_policy.value
        report = evaluate_policy(
            batch,
            interval=interval.value,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            truth=truth,
            title=f"OPE of {target_name} on {logs.name}",
        )
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    report.write_json(out_dir / "report.json")
    report.write_html(out_dir / "report.html")
    if as_json:
        typer.echo(json.dumps(report.to_dict()["estimates"]))
        return
    _print_report(report, out_dir)
