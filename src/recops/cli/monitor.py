"""``recops monitor report``: drift, online metrics and alerts from the server's event log.

The current window is the last ``--current-hours`` of the log (ending at its newest
row, or ``--now``). The reference is the training window: the span of ``--training``
(the model's training interactions), or else the ``--reference-hours`` before the
current window in the log. Bad input ends with one line naming the file or option and
exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recops.cli.app import app
from recops.cli.experiment import DEFAULT_EVENT_LOG, EventLogOption

if TYPE_CHECKING:
    import pandas as pd

    from recops.monitoring.monitor import MonitorReport

BAD_INPUT = 2
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}

monitor_app = typer.Typer(
    help="Monitoring: feature and prediction drift, online metrics per model version, alerts.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")


def parse_duration(text: str) -> int:
    """``90``, ``15m``, ``1h``, ``2d`` → seconds."""
    value, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        raise ValueError(
            f"--bucket: expected a duration like 15m, 1h or 1d (got {text!r})"
        ) from None
    if seconds < 1:
        raise ValueError(f"--bucket: must be at least one second (got {text!r})")
    return int(seconds)


def _read_table(path: Path, what: str) -> pd.DataFrame:
    import pandas as pd

    if path.is_dir():
        path = path / f"{what}.parquet"
    if not path.is_file():
        raise ValueError(f"{path}: no such file (--{'catalog' if what == 'items' else 'training'})")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    raise ValueError(f"{path}: expected a .parquet or .csv file (got {suffix!r})")


def _require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: lacks column(s) {', '.join(missing)}")


def _print(report: MonitorReport, current: pd.DataFrame) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    d = report.drift
    features = Table(
        title=f"Drift: current {d.current.source} against reference {d.reference.source}"
    )
    for name in ("feature", "kind", "ref n", "cur n", "PSI", "test", "p-value", "status"):
        features.add_column(name, justify="left" if name in ("feature", "status") else "right")
    for f in d.features:
        style = "bold red" if f.drifted else ("green" if f.status == "stable" else "yellow")
        features.add_row(
            f.feature,
            f.kind,
            f"{f.n_reference:,}",
            f"{f.n_current:,}",
            "–" if f.psi is None else f"{f.psi:.3f}",
            f.test or "–",
            "–" if f.p_value is None else f"{f.p_value:.2g}",
            f"[{style}]{f.status}[/{style}]",
        )
    console.print(features)
    online = Table(title="Online metrics of the current window")
    for name in (
        "version",
        "requests",
        "impressions",
        "clicks",
        "CTR",
        "coverage",
        "cold start",
        "events",
    ):
        online.add_column(name, justify="left" if name == "version" else "right")
    for row in current.to_dict("records"):
        label = "all" if row["version"] == "*" else f"{row['model']}/{row['version']}"
        coverage = float(row["coverage"])
        online.add_row(
            label,
            f"{int(row['requests']):,}",
            f"{int(row['impressions']):,}",
            f"{int(row['clicks']):,}",
            f"{float(row['ctr']):.4f}",
            "–" if coverage != coverage else f"{coverage:.1%}",
            f"{float(row['cold_start_share']):.1%}",
            f"{int(row['events']):,}",
        )
    console.print(online)
    verdict = (
        "[bold red]Retraining advised[/bold red]"
        if report.should_retrain
        else "[green]No retraining needed[/green]"
    )
    console.print(verdict)
    for alert in report.alerts:
        console.print(f"  - {escape(f'[{alert.kind}]')} {escape(alert.message)}")
    for note in (*d.notes, *report.metrics.notes):
        console.print(f"Note: {note}")
    for f in d.features:
        if f.status in ("unavailable", "insufficient"):
            console.print(f"Note: {f.reason}")


@monitor_app.command("report")
def report(
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Catalog (items .parquet/.csv, or a dataset folder with items.parquet): "
            "categories and publish times for the item-side features and coverage."
        ),
    ] = None,
    training: Annotated[
        Path | None,
        typer.Option(
            help="The served model's training interactions (.parquet/.csv, or a dataset folder): "
            "the reference window and its clicks. Default: the log before the current window."
        ),
    ] = None,
    current_hours: Annotated[
        float, typer.Option(help="Length of the current window.", min=0.01)
    ] = 24.0,
    reference_hours: Annotated[
        float, typer.Option(help="Reference window length without --training.", min=0.01)
    ] = 168.0,
    now: Annotated[
        int | None,
        typer.Option(
            help="End of the current window (unix seconds); default: the log's newest row."
        ),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="Metrics bucket: 15m, 1h, 1d (default: the config's, 1h).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Thresholds (TOML or JSON of recops.monitoring.MonitorConfig)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to store the results in (metrics.parquet, latest.json, drift/)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write the HTML report (with plots) here.")
    ] = None,
    prometheus: Annotated[
        Path | None,
        typer.Option(help="Write the Prometheus text exposition here (textfile collector)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Compare recent serving traffic with the training window and say whether to retrain.

    Features: the category mix of clicks, item age at click, users' history lengths, the
    served scores and the share of cold-start answers (PSI with KS or χ²); online metrics
    per model version and time bucket (CTR, coverage, event volume).
    """
    from recops.monitoring.config import MonitorConfig, MonitorConfigError
    from recops.monitoring.features import Window
    from recops.monitoring.logs import read_serving_log
    from recops.monitoring.monitor import monitor
    from recops.monitoring.online import window_metrics
    from recops.monitoring.samples import training_window

    try:
        settings = MonitorConfig.from_file(config) if config else MonitorConfig()
        if bucket is not None:
            settings = settings.model_copy(update={"bucket_s": parse_duration(bucket)})
        items = _read_table(catalog, "items") if catalog else None
        if items is not None and catalog is not None:
            _require(items, ("item_id", "categories", "publish_time"), catalog)
        train = _read_table(training, "interactions") if training else None
        if train is not None and training is not None:
            _require(train, ("user_id", "item_id", "event", "timestamp"), training)
        log = read_serving_log(event_log)
        span = log.span()
        if span is None:
            raise ValueError(f"{event_log}: the event log is empty")
        end = span[1] if now is None else now
        current = Window(int(end - current_hours * 3_600), int(end), "serving log")
        if train is not None:
            reference = training_window(train)
        else:
            reference = Window(
                int(current.start - reference_hours * 3_600), current.start, "serving log"
            )
        result = monitor(
            log,
            current=current,
            reference=reference,
            training=train,
            catalog=items,
            config=settings,
        )
    except (FileNotFoundError, ValueError, MonitorConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    size = None if items is None else int(items["item_id"].nunique())
    summary = window_metrics(
        log.between(current.start, current.end), catalog_size=size, click_event=settings.click_event
    )
    written = []
    if out is not None:
        from recops.monitoring.store import save_report

        written += save_report(result, out)
    if html is not None:
        from recops.monitoring.html import write_html

        written.append(write_html(result, html))
    if prometheus is not None:
        from recops.monitoring.prometheus import render_prometheus

        prometheus.write_bytes(render_prometheus(result))
        written.append(prometheus)
    if as_json:
        data = result.to_dict()
        data["current_metrics"] = json.loads(summary.to_json(orient="records"))
        typer.echo(json.dumps(data, indent=2))
        return
    _print(result, summary)
    for path in written:
        typer.echo(f"Wrote {path}")
