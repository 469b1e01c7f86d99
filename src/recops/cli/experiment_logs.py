"""What the server logged for an experiment: ``recops experiment export NAME``, and the
per-unit table ``recops experiment analyze NAME`` reads.

``--format exposures`` writes recops' exposure schema (one row per shown item, see
:mod:`recops.ope.exposures`) with the experiment, variant and model version of each
row; ``--format obd`` the Open Bandit Dataset's layout plus its ``item_context.csv``.
Either file goes straight into ``recops ope --logs FILE --format exposures|obd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recops.cli.experiment import (
    BAD_INPUT,
    DEFAULT_EVENT_LOG,
    EventLogOption,
    NameArgument,
    describe_log,
    experiment_app,
)

if TYPE_CHECKING:
    import pandas as pd

    from recops.serving.records import Event, Exposure

#: Exposures and responses are read from the log in pages of this many rows.
_PAGE = 50_000


class ExportFormat(StrEnum):
    """Layouts ``export`` writes."""

    exposures = "exposures"
    obd = "obd"


def read_experiment_log(
    event_log: str | Path, experiment: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The experiment's assignments, the exposures of its units, and the answering events.

    Exposures of an assigned unit are kept whatever experiment served them, so that
    the pre-period of CUPED can be read off them too.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(exposures, responses, assignments)`` in the layout of
        :mod:`recops.experiments.logs`.
    """
    import pandas as pd

    from recops.experiments.logs import EXPOSURE_COLUMNS
    from recops.serving.backends import event_log_at

    log = event_log_at(event_log)
    try:
        assigned = log.read_assignments(experiment)
        units = {a.unit for a in assigned}
        kept: list[Exposure] = []
        after = 0
        while page := log.read_exposures(after, _PAGE):
            after = page[-1][0]
            kept.extend(x for _, x in page if x.experiment == experiment or x.unit in units)
        request_ids = {x.request_id for x in kept}
        answers: list[Event] = []
        after = 0
        while events := log.read_responses(after, _PAGE):
            after = events[-1][0]
            answers.extend(e for _, e in events if e.request_id in request_ids)
    finally:
        log.close()
    exposures = pd.DataFrame(
        [{c: getattr(x, c) for c in EXPOSURE_COLUMNS} for x in kept], columns=EXPOSURE_COLUMNS
    )
    responses = pd.DataFrame(
        [(e.request_id, e.item_id, e.event, e.timestamp) for e in answers],
        columns=["request_id", "item_id", "event", "timestamp"],
    )
    assignments = pd.DataFrame(
        [(a.unit, a.variant, a.timestamp) for a in assigned],
        columns=["unit", "variant", "timestamp"],
    )
    return exposures, responses, assignments


@experiment_app.command("export")
def export(
    name: NameArgument,
    out: Annotated[
        Path, typer.Option("--out", help="File to write (.parquet, .csv or .jsonl; obd: .csv).")
    ],
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help="exposures: recops' schema; obd: Open Bandit Dataset."),
    ] = ExportFormat.exposures,
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    reward: Annotated[
        str, typer.Option(help="The event type that counts as a reward (a click).")
    ] = "click",
) -> None:
    """Write the exposures the server logged in experiment NAME, with their rewards."""
    from recops.experiments.logs import shown_items, to_obd
    from recops.ope.exposures import write_exposures

    try:
        exposures, responses, _ = read_experiment_log(event_log, name)
        exposures = exposures[exposures["experiment"] == name]
        if exposures.empty:
            where = describe_log(event_log)
            raise ValueError(f"{where}: no exposures of experiment {name!r} are logged")
        shown = shown_items(exposures, responses, reward)
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt is ExportFormat.obd:
            if out.suffix.lower() != ".csv":
                raise ValueError(f"{out}: the OBD layout is CSV (give a .csv file)")
            log, items = to_obd(shown)
            log.to_csv(out)
            items.to_csv(out.parent / "item_context.csv", index=False)
        else:
            write_exposures(shown, out)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    slates = shown["request_id"].nunique()
    typer.echo(f"Wrote {len(shown):,} shown items of {slates:,} slates ({fmt.value}) to {out}")


@dataclass(frozen=True)
class LoggedExperiment:
    """An experiment's config and its per-unit table (or interleaving credits) from the log."""

    name: str
    interleaving: bool
    control: str
    primary_metric: str
    guardrails: list[str]
    weights: dict[str, float]
    frame: pd.DataFrame


def logged_unit_table(event_log: str | Path, name: str) -> LoggedExperiment:
    """The stored config of ``name`` and what the log says about its units.

    An A/B experiment gets :func:`~recops.experiments.logs.unit_table`; an
    interleaving one the clicks credited to each arm per unit
    (:func:`~recops.experiments.logs.team_credits`).
    """
    from recops.cli.experiment_analyze import AnalysisInputError
    from recops.experiments.logs import shown_items, team_credits, unit_table
    from recops.experiments.store import ExperimentNotFoundError
    from recops.experiments.store_postgres import is_postgres_url, open_experiment_store

    where = describe_log(event_log)
    if not is_postgres_url(event_log) and not Path(event_log).is_file():
        raise AnalysisInputError(f"{where}: no event log there (see --event-log)")
    with open_experiment_store(event_log) as store:
        try:
            config = store.get(name).config
        except ExperimentNotFoundError as exc:
            raise AnalysisInputError(str(exc)) from None
    exposures, responses, assignments = read_experiment_log(event_log, name)
    if exposures.empty or not (exposures["experiment"] == name).any():
        raise AnalysisInputError(f"{where}: no exposures of experiment {name!r} are logged")
    shown = shown_items(exposures, responses)
    interleaving = config.type == "interleaving"
    frame = team_credits(shown, name) if interleaving else unit_table(shown, assignments, name)
    return LoggedExperiment(
        name=name,
        interleaving=interleaving,
        control=config.control,
        primary_metric=config.primary_metric,
        guardrails=[f"{g.metric}:{g.direction}:{g.max_relative_change}" for g in config.guardrails],
        weights={v.name: v.weight for v in config.variants},
        frame=frame,
    )


def analyze_interleaved(logged: LoggedExperiment, *, alpha: float, as_json: bool) -> None:
    """Print the preference test of an interleaving experiment (control as ranker A)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from recops.experiments.interleaving import analyze_interleaving

    arms = [c for c in logged.frame.columns if c != "unit_id"]
    other = next((a for a in arms if a != logged.control), None)
    if logged.control not in arms or other is None:
        typer.echo(
            f"error: experiment {logged.name!r}: no clicks credited to both arms yet "
            f"(credited: {', '.join(arms) or 'none'})",
            err=True,
        )
        raise typer.Exit(BAD_INPUT)
    result = analyze_interleaving(
        logged.frame["unit_id"],
        logged.frame[logged.control],
        logged.frame[other],
        variant_a=logged.control,
        variant_b=other,
        alpha=alpha,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"interleaving: {logged.control} vs {other} ({logged.name})")
    for column in ("units", f"prefer {logged.control}", f"prefer {other}", "ties", "Δ [95% CI]",
                   "p (sign test)", "winner"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        f"{result.units:,}",
        f"{result.wins_a:,}",
        f"{result.wins_b:,}",
        f"{result.ties:,}",
        f"{result.delta:+.3f} [{result.ci_low:+.3f}, {result.ci_high:+.3f}]",
        f"{result.p_value:.3g}",
        str(result.winner or "none yet"),
    )
    Console().print(table)
