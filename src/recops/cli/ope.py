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

    from recops.ope.feedback import LoggedFeedback


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


def _load_feedback(
    logs: Path, fmt: LogFormat, behavior_policy: str, campaign: str
) -> LoggedFeedback:
    from recops.ope.exposures import read_exposures
    from recops.ope.feedback import read_obd

    if fmt is LogFormat.obd:
        return read_obd(logs, behavior_policy=behavior_policy, campaign=campaign)
    return read_exposures(logs).feedback


def _load_action_dist(path: Path) -> np.ndarray:
    import numpy as np

    if path.suffix != ".npy":
        raise ValueError(f"{path}: the target policy must be a .npy file (got '{path.suffix}')")
    # allow_pickle=False: an action distribution is numbers; never unpickle.
    return np.load(path, allow_pickle=False)


@app.command()
def ope(
    logs: Path = typer.Option(..., "--logs", help="Logged feedback: OBD CSV/folder or exposures."),
    action_dist: Path = typer.Option(
        ...,
        "--action-dist",
        "--policy",
        help=(
            "Target policy: .npy of shape (n_items, n_positions), or "
            "(n_rows, n_items, n_positions) for a context-dependent policy. Items are "
            "OBD item_ids, or for exposures the sorted distinct item ids."
        ),
    ),
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
    from rich.console import Console
    from rich.table import Table

    from recops.ope.batch import OPEBatch
    from recops.ope.report import evaluate_policy
    from recops.ope.reward_model import (
        ActionPositionMeanModel,
        LogisticRewardModel,
        RewardData,
        cross_fit_predict,
    )

    try:
        feedback = _load_feedback(logs, fmt, behavior_policy, campaign)
        dist = _load_action_dist(action_dist)
        q_hat = None
        if reward_model is not RewardModelKind.none:
            factory = (
                ActionPositionMeanModel
                if reward_model is RewardModelKind.mean
                else LogisticRewardModel
            )
            q_hat = cross_fit_predict(
                factory, RewardData.from_feedback(feedback), n_folds=folds, random_state=seed
            )
        batch = OPEBatch.from_action_dist(feedback, dist, q_hat)
        report = evaluate_policy(
            batch,
            interval=interval.value,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            truth=truth,
            title=f"OPE of {action_dist.name} on {logs.name}",
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
    table = Table(title=report.title)
    for column in ("estimator", "value", f"{1 - alpha:.0%} interval", "ESS", "max weight"):
        table.add_column(column, justify="right")
    rec = report.recommendation
    for e in report.estimates:
        mark = " *" if e.estimator == rec.estimator else ""
        table.add_row(
            e.estimator + mark,
            f"{e.value:.6g}",
            f"[{e.ci_low:.6g}, {e.ci_high:.6g}]",
            f"{e.ess:.1f}",
            f"{e.max_weight:.3g}",
        )
    console = Console()
    console.print(table)
    console.print(f"Recommendation: {rec.estimator or 'none'} — {rec.reason}")
    for warning in rec.warnings:
        console.print(f"Warning: {warning}")
    console.print(f"Wrote {out_dir / 'report.json'} and {out_dir / 'report.html'}")
