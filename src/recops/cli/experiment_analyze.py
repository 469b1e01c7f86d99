"""``recops experiment analyze --events FILE``: the A/B analysis of a per-unit table.

A thin layer over :func:`recops.experiments.stats.analyze`: read the table, run the
analysis, print a rich table (or ``--json``) and optionally write the HTML report.
Bad input ends with one line naming the file, the line (or row) and the column, and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recops.cli.experiment import experiment_app

if TYPE_CHECKING:
    import pandas as pd

    from recops.experiments.stats import AnalysisResult

BAD_INPUT = 2


class DecisionKind(StrEnum):
    """Which test the recommendation reads."""

    sequential = "sequential"
    fixed = "fixed"


class GoalKind(StrEnum):
    """Which way the primary metric should move."""

    increase = "increase"
    decrease = "decrease"


class AnalysisInputError(ValueError):
    """Input the analysis cannot use; the message names the file and, if known, line and column."""


def read_unit_table(path: Path) -> pd.DataFrame:
    """Read a per-unit table from CSV or Parquet (``unit_id`` and ``variant`` as text)."""
    import pandas as pd

    if not path.is_file():
        raise AnalysisInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"unit_id": str, "variant": str})
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise AnalysisInputError(f"{path}: cannot be read as {suffix[1:]} ({exc})") from exc
    raise AnalysisInputError(f"{path}: expected a .csv or .parquet file (got '{suffix}')")


def _where(path: Path, row: int | None, column: str | None) -> str:
    """``FILE: line 7, column 'clicks'`` (CSV lines count the header as line 1)."""
    parts = [str(path)]
    if row is not None:
        parts.append(f"line {row + 2}" if path.suffix.lower() == ".csv" else f"row {row + 1}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts[:1]) + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


def _weights(specs: list[str]) -> dict[str, float] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            out[name] = float(value)
        except ValueError:
            name = ""
        if not sep or not name:
            raise AnalysisInputError(
                f"--weight must be VARIANT=NUMBER, e.g. control=1 (got {spec!r})"
            )
    return out


def run_analysis(
    frame: pd.DataFrame,
    *,
    source: Path,
    control: str,
    metrics: list[str],
    guardrails: list[str],
    weights: dict[str, float] | None,
    alpha: float,
    decision: DecisionKind,
    goal: GoalKind,
    tuning: float,
    min_units: int,
    as_json: bool,
    html: Path | None,
) -> AnalysisResult:
    """Analyse ``frame`` and print / write the results; errors name ``source``.

    This is the function any other front end (e.g. the exposure log's per-unit table)
    calls once it has the DataFrame.
    """
    from recops.experiments.report import print_report, write_html
    from recops.experiments.stats import UnitTableError, analyze

    try:
        result = analyze(
            frame,
            control,
            metrics,
            guardrails=guardrails,
            weights=weights,
            alpha=alpha,
            decision=decision.value,
            goal=goal.value,
            tuning=tuning,
            min_units=min_units,
        )
    except UnitTableError as exc:
        raise AnalysisInputError(f"{_where(source, exc.row, exc.column)}: {exc.message}") from exc
    except ValueError as exc:
        raise AnalysisInputError(f"{source}: {exc}") from exc
    if html is not None:
        write_html(result, frame, html, title=f"Experiment analysis of {source.name}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        print_report(result)
        if html is not None:
            typer.echo(f"Wrote {html}")
    return result


@experiment_app.command("analyze")
def analyze_command(
    name: str | None = typer.Argument(
        None,
        help=(
            "An experiment the server ran: its per-unit table is built from the event "
            "log (--event-log); control, metrics, guardrails and weights come from its config."
        ),
    ),
    events: Path | None = typer.Option(
        None,
        "--events",
        help=(
            "Instead of NAME: CSV or Parquet, one row per unit: unit_id, variant, one column "
            "per metric component, optional pre_<column> (CUPED) and timestamp (unix seconds)."
        ),
    ),
    event_log: str = typer.Option(
        "recops-events.sqlite3",
        "--event-log",
        envvar=["RECOPS_EVENT_LOG_URL", "RECOPS_EVENT_LOG_PATH"],
        help="With NAME: the server's event log (exposures, assignments, clicks): a SQLite "
        "file or a postgresql:// URL.",
    ),
    control: str | None = typer.Option(
        None, "--control", help="The control variant's name (with NAME: the config's)."
    ),
    metric: list[str] = typer.Option(
        [],
        "--metric",
        help=(
            "A metric: a column (per-unit mean, Welch's test) or NUM/DEN (ratio of sums, "
            "delta method), e.g. clicks/impressions. Repeat; the first is the primary metric. "
            "With NAME the server's table has requests, impressions and clicks (and pre_ "
            "columns for CUPED); default: the config's primary metric."
        ),
    ),
    guardrail: list[str] = typer.Option(
        [],
        "--guardrail",
        help=(
            "METRIC:DIRECTION:MAX_RELATIVE_CHANGE, e.g. latency_ms:increase:0.05 "
            "(DIRECTION is the harmful one). Repeat."
        ),
    ),
    weight: list[str] = typer.Option(
        [],
        "--weight",
        help="Configured allocation VARIANT=NUMBER for the SRM test (repeat; default: equal).",
    ),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="Significance level."),
    decision: DecisionKind = typer.Option(
        DecisionKind.sequential,
        help=(
            "Test the recommendation reads: sequential (safe to read at any time) or "
            "fixed (valid only at the planned sample size)."
        ),
    ),
    goal: GoalKind = typer.Option(
        GoalKind.increase, help="Which way the primary metric should move."
    ),
    tuning: float = typer.Option(
        5000.0, min=1.0, help="Confidence sequence: total units at which it is narrowest."
    ),
    min_units: int = typer.Option(100, min=2, help="Fewer units in any variant: keep running."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as one JSON object."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML report with plots here."),
) -> None:
    """Analyse an A/B test from a per-unit table: lifts with intervals, SRM, CUPED, sequential
    tests, Holm/BH, guardrails, and a recommendation (ship / don't ship / keep running).

    Give NAME to analyse what the server logged for that experiment (an interleaving
    experiment gets its preference test), or --events FILE for data from elsewhere."""
    from recops.cli.experiment import describe_log
    from recops.cli.experiment_logs import analyze_interleaved, logged_unit_table

    try:
        if (name is None) == (events is None):
            raise AnalysisInputError("give an experiment NAME or --events FILE (one of them)")
        weights: dict[str, float] | None
        if name is not None:
            logged = logged_unit_table(event_log, name)
            if logged.interleaving:
                analyze_interleaved(logged, alpha=alpha, as_json=as_json)
                return
            where = describe_log(event_log)
            frame, source = logged.frame, Path(f"experiment {name} in {where}")
            control = control or logged.control
            metric = metric or [logged.primary_metric]
            guardrail = guardrail or logged.guardrails
            weights = _weights(weight) or logged.weights
        else:
            assert events is not None
            frame, source, weights = read_unit_table(events), events, _weights(weight)
            if control is None or not metric:
                raise AnalysisInputError("--events needs --control and at least one --metric")
        run_analysis(
            frame,
            source=source,
            control=control,
            metrics=metric,
            guardrails=guardrail,
            weights=weights,
            alpha=alpha,
            decision=decision,
            goal=goal,
            tuning=tuning,
            min_units=min_units,
            as_json=as_json,
            html=html,
        )
    except AnalysisInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
