"""The monitoring report as one self-contained HTML page (plots inlined as SVG, no network).

Sections: the verdict and its reasons; the drift table; each compared feature's binned
reference and current distributions; the online metrics over time per model version
(CTR, requests and events, coverage); the notes.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recops.monitoring.drift import FeatureDrift
from recops.monitoring.features import Window
from recops.monitoring.monitor import MonitorReport
from recops.monitoring.online import ALL_VERSIONS

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.drift { color: #b00020; font-weight: bold; } .ok { color: #1b5e20; }
figure { display: inline-block; margin: 0.5em; }
"""


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    return fig, ax


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _distribution_plot(f: FeatureDrift) -> str:
    assert f.bins is not None
    fig, ax = _figure()
    x = np.arange(len(f.bins.labels))
    ax.bar(x - 0.2, f.bins.reference_shares, width=0.4, label="reference")
    ax.bar(x + 0.2, f.bins.current_shares, width=0.4, label="current")
    ax.set_xticks(x, f.bins.labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share")
    ax.set_title(f"{f.feature}: PSI {f.psi:.3f}", fontsize=10)
    ax.legend(fontsize=8)
    return _svg(fig)


def _time_plot(table: pd.DataFrame, columns: tuple[str, ...], title: str) -> str:
    fig, ax = _figure()
    for (model, version), rows in table.groupby(["model", "version"], sort=True):
        name = "all versions" if version == ALL_VERSIONS else f"{model}/{version}"
        when = pd.to_datetime(rows["bucket_start"], unit="s", utc=True)
        for column in columns:
            label = name if len(columns) == 1 else f"{name} {column}"
            if version == ALL_VERSIONS:  # drawn on top, so one version's line cannot hide it
                ax.plot(when, rows[column], "k--", linewidth=1, label=label, zorder=3)
            else:
                ax.plot(when, rows[column], marker=".", linewidth=1, label=label)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.legend(fontsize=7)
    return _svg(fig)


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if not np.isfinite(value) else f"{value:.4g}"
    return html.escape(str(value))


def _drift_table(report: MonitorReport) -> str:
    head = "<tr><th>feature</th><th>kind</th><th>reference n</th><th>current n</th>"
    head += "<th>PSI</th><th>test</th><th>p-value</th><th>status</th></tr>"
    rows = []
    for f in report.drift.features:
        css = "drift" if f.drifted else "ok"
        cells = (f.kind, f.n_reference, f.n_current, f.psi, f.test, f.p_value)
        rows.append(
            f"<tr><td>{html.escape(f.feature)}</td>"
            + "".join(f"<td>{_cell(c)}</td>" for c in cells)
            + f'<td class="{css}">{html.escape(f.status)}</td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _span(window: Window) -> str:
    return " → ".join(
        pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
        for t in (window.start, window.end)
    )


def render_html(report: MonitorReport, title: str = "recops monitoring report") -> str:
    """The page as a string."""
    d = report.drift
    when = " → ".join(
        pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
        for t in (d.current.start, d.current.end)
    )
    ref = " → ".join(
        pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
        for t in (d.reference.start, d.reference.end)
    )
    verdict = "Retraining advised" if report.should_retrain else "No retraining needed"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Current window {when} UTC ({html.escape(d.current.source)}); reference {ref} "
        f"UTC ({html.escape(d.reference.source)}).</p>",
        f'<h2 class="{"drift" if report.should_retrain else "ok"}">{verdict}</h2>',
        "<ul>" + "".join(f"<li>{html.escape(a.message)}</li>" for a in report.alerts) + "</ul>",
        "<h2>Drift</h2>",
        _drift_table(report),
        "".join(f"<figure>{_distribution_plot(f)}</figure>" for f in d.features if f.bins),
        "<ul>" + "".join(f"<li>{html.escape(f.reason)}</li>" for f in d.features) + "</ul>",
        "<h2>Online metrics</h2>",
    ]
    table = report.metrics.table
    if table.empty:
        parts.append("<p>No slates logged.</p>")
    else:
        plots = [("ctr",), ("requests", "events")]
        titles = ["CTR per bucket", "Requests and events per bucket"]
        if table["coverage"].notna().any():
            plots.append(("coverage",))
            titles.append("Catalog coverage per bucket")
        for columns, name in zip(plots, titles, strict=True):
            parts.append(f"<figure>{_time_plot(table, columns, name)}</figure>")
    notes = (*d.notes, *report.metrics.notes)
    if notes:
        parts.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_html(report: MonitorReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path``."""
    out = Path(path)
    out.write_text(render_html(report), encoding="utf-8")
    return out
