"""How an experiment analysis is shown: a rich terminal table and a self-contained HTML report.

The HTML page holds the recommendation, the SRM test, the guardrails, the table of every
metric × variant, and three plots (PNG, inlined as base64, so the page needs no network):
the relative lift with its fixed-horizon interval and confidence sequence per metric;
the cumulative metric per variant over time (units in ``timestamp`` order); and the
absolute lift of each metric over the looks with the fixed-horizon interval and the
confidence sequence around it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recops.experiments.stats.analysis import AnalysisResult, Comparison, DecisionTest
from recops.experiments.stats.fixed import Lift
from recops.experiments.stats.timeline import Timeline, timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

DECISION_LABEL = {"ship": "SHIP", "dont_ship": "DON'T SHIP", "keep_running": "KEEP RUNNING"}


def _num(value: float, fmt: str) -> str:
    return f"{value:{fmt}}" if np.isfinite(value) else "n/a"


def _with_interval(estimate: float, low: float, high: float, fmt: str) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return _num(estimate, fmt)
    return f"{_num(estimate, fmt)} [{low:{fmt}}, {high:{fmt}}]"


def _columns(result: AnalysisResult) -> list[str]:
    level = f"{1 - result.alpha:.0%}"
    return [
        "metric",
        "variant",
        f"mean ({result.control})",
        "mean (variant)",
        f"abs. lift [{level} CI]",
        f"rel. lift [{level} CI]",
        "p",
        f"rel. lift [{level} conf. sequence]",
        "p (always valid)",
        "CUPED rel. lift (variance cut)",
        f"Holm p ({result.decision_test})",
    ]


def _cells(c: Comparison, decision_test: DecisionTest) -> list[str]:
    """One metric × variant row, shared by the terminal and the HTML table."""
    fix, seq = c.fixed, c.sequential
    cuped = "—"
    if c.cuped is not None:
        rel = c.cuped.fixed.relative
        cut = c.cuped.variance_reduction
        cuped = f"{_with_interval(rel.estimate, rel.ci_low, rel.ci_high, '+.2%')} (−{cut:.0%})"
    holm = "—"
    if c.adjusted is not None:
        adjusted = c.adjusted
        p = adjusted.sequential_holm if decision_test == "sequential" else adjusted.fixed_holm
        holm = _num(p, ".3g")
    return [
        c.metric.name + (" (guardrail)" if c.role == "guardrail" else ""),
        c.variant,
        _num(c.control.mean, ".4g"),
        _num(c.treatment.mean, ".4g"),
        _with_interval(fix.absolute.estimate, fix.absolute.ci_low, fix.absolute.ci_high, "+.4g"),
        _with_interval(fix.relative.estimate, fix.relative.ci_low, fix.relative.ci_high, "+.2%"),
        _num(fix.absolute.p_value, ".3g"),
        _with_interval(seq.relative.estimate, seq.relative.ci_low, seq.relative.ci_high, "+.2%"),
        _num(seq.absolute.p_value, ".3g"),
        cuped,
        holm,
    ]


def _srm_line(result: AnalysisResult) -> str:
    srm = result.srm
    counts = ", ".join(f"{k} {v}" for k, v in srm.counts.items())
    state = "MISMATCH" if srm.mismatch else "ok"
    return f"SRM {state}: units {counts}; χ² = {srm.statistic:.3g}, p = {srm.p_value:.3g}"


def _pct(lift: Lift) -> str:
    """``+10.1% [+0.5, +19.8]``: a relative lift and its interval in percent."""
    interval = _pct_interval(lift) if np.isfinite(lift.estimate) else ""
    return _pct_estimate(lift) + (f" {interval}" if interval else "")


def _pct_estimate(lift: Lift) -> str:
    """``+10.1%``, or ``n/a`` when the lift is not finite."""
    return f"{lift.estimate:+.1%}" if np.isfinite(lift.estimate) else "n/a"


def _lines(lift: Lift) -> str:
    """:func:`_pct_interval` over two lines, for the terminal table's narrow cells."""
    return _pct_interval(lift, ",\n ")


def _pct_interval(lift: Lift, between: str = ", ") -> str:
    """``[+0.5, +19.8]``, the interval of :func:`_pct`; empty when it is not finite."""
    if not np.isfinite([lift.ci_low, lift.ci_high]).all():
        return ""
    return f"[{100 * lift.ci_low:+.1f}{between}{100 * lift.ci_high:+.1f}]"


def analysis_table(result: AnalysisResult) -> Table:
    """A compact rich table: per metric × variant what the decision reads.

    That is the CUPED-adjusted result where the table has pre-period columns (the
    ``CUPED`` column then shows the variance cut); the HTML report has every number.
    """
    from rich.table import Table

    rec = result.recommendation
    title = f"{DECISION_LABEL[rec.decision]}{' ' + rec.variant if rec.variant else ''}"
    level = f"{1 - result.alpha:.0%}"
    table = Table(
        title=f"Experiment analysis: {title}",
        caption=f"Holm p: of the {result.decision_test} test. {_srm_line(result)}",
    )
    # Cells of two or three lines (interval under the estimate, p under the
    # interval): the table reads at 80 columns, where one line per cell folded
    # every number into fragments.
    names = [c.metric.name for c in result.comparisons]
    table.add_column("metric\n· variant", min_width=min(24, max(map(len, names), default=6)))
    table.add_column(f"{result.control}\n→ variant")
    table.add_column(f"rel. lift\n[{level} CI]\np", justify="right")
    table.add_column(f"conf. seq.\n[{level}]\np", justify="right")
    table.add_column("Holm\np", justify="right")
    table.add_column("CUPED\nvar.", justify="right")
    for c in result.comparisons:
        use_cuped = c.adjusted.uses_cuped if c.adjusted is not None else c.cuped is not None
        fixed, seq = c.read("fixed", use_cuped), c.read("sequential", use_cuped)
        holm = "—"
        if c.adjusted is not None:
            adj = c.adjusted
            holm = _num(
                adj.sequential_holm if result.decision_test == "sequential" else adj.fixed_holm,
                ".3g",
            )
        table.add_row(
            f"{c.metric.name}\n· {c.variant}" + (" (guardrail)" if c.role == "guardrail" else ""),
            f"{_num(c.control.mean, '.4g')}\n→ {_num(c.treatment.mean, '.4g')}",
            "\n".join(filter(None, (_pct(fixed.relative).split(" ", 1)[0], _lines(fixed.relative))))
            + f"\np {_num(fixed.absolute.p_value, '.2g')}",
            (_lines(seq.relative) or _pct(seq.relative))
            + f"\np {_num(seq.absolute.p_value, '.2g')}",
            holm,
            "—" if c.cuped is None else f"−{c.cuped.variance_reduction:.0%}",
        )
    return table


def print_report(result: AnalysisResult) -> None:
    """Print the table, the guardrails and the recommendation with its reasons."""
    from rich.console import Console

    console = Console()
    console.print(analysis_table(result))
    for g in result.guardrails:
        console.print(f"Guardrail {g.verdict.upper()} for {g.variant}: {g.reason}")
    rec = result.recommendation
    console.print(f"[bold]Recommendation: {DECISION_LABEL[rec.decision]}[/bold]", end="")
    console.print(f" {rec.variant}" if rec.variant else "")
    for reason in rec.reasons:
        console.print(f"  - {reason}")
    for note in result.notes:
        console.print(f"Note: {note}")


def _png(fig: Figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lift_plot(result: AnalysisResult) -> str:
    """Relative lift per metric × variant: fixed-horizon CI (thick), confidence sequence (thin)."""
    plt = _pyplot()
    rows = list(result.comparisons)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    for yi, c in zip(y, rows, strict=True):
        fix, seq = c.fixed.relative, c.sequential.relative
        if np.isfinite([seq.ci_low, seq.ci_high]).all():
            ax.plot([seq.ci_low * 100, seq.ci_high * 100], [yi, yi], color="tab:orange", lw=1.5)
        if np.isfinite([fix.ci_low, fix.ci_high]).all():
            ax.plot([fix.ci_low * 100, fix.ci_high * 100], [yi, yi], color="tab:blue", lw=5)
        ax.plot([fix.estimate * 100], [yi], "o", color="black")
        if c.cuped is not None and np.isfinite(c.cuped.fixed.relative.estimate):
            ax.plot([c.cuped.fixed.relative.estimate * 100], [yi], "D", color="tab:green")
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(y, [f"{c.metric.name} · {c.variant}" for c in rows])
    ax.set_xlabel(
        f"relative lift vs {result.control} (%): {1 - result.alpha:.0%} CI (blue), "
        "confidence sequence (orange), CUPED (green)"
    )
    return _png(fig)


def _x(line: Timeline) -> tuple[np.ndarray, str]:
    if line.time is None:
        return line.looks.astype(float), "units (arrival order)"
    return pd.to_datetime(line.time, unit="s").to_numpy(), "time (UTC)"


def cumulative_plot(lines: list[Timeline]) -> str:
    """The cumulative metric per variant over time, one panel per metric."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(lines), 1, figsize=(8, 2.8 * len(lines)), squeeze=False)
    for ax, line in zip(axes[:, 0], lines, strict=True):
        x, label = _x(line)
        for variant, values in line.cumulative.items():
            ax.plot(x, values, label=variant)
        ax.set_title(f"cumulative {line.metric}")
        ax.set_xlabel(label)
        ax.legend(loc="best")
    return _png(fig)


def sequential_plot(lines: list[Timeline]) -> str:
    """Absolute lift over the looks: fixed-horizon CI and the (wider) confidence sequence."""
    plt = _pyplot()
    panels = [(line, v) for line in lines for v in line.tests]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.8 * len(panels)), squeeze=False)
    for ax, (line, variant) in zip(axes[:, 0], panels, strict=True):
        tests = line.tests[variant]
        x, label = _x(line)
        ax.fill_between(
            x,
            tests.cs_low,
            tests.cs_high,
            color="tab:orange",
            alpha=0.25,
            label="confidence sequence",
        )
        ax.fill_between(
            x, tests.ci_low, tests.ci_high, color="tab:blue", alpha=0.35, label="fixed-horizon CI"
        )
        ax.plot(x, tests.lift, color="black", lw=1, label="lift")
        ax.axhline(0, color="grey", lw=1)
        ax.set_title(f"{line.metric}: {variant} − control")
        ax.set_xlabel(label)
        ax.legend(loc="best")
    return _png(fig)


def _html_table(result: AnalysisResult) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _columns(result))
    body = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(c, result.decision_test))
        + "</tr>"
        for c in result.comparisons
    )
    return f"<table><tr>{head}</tr>\n{body}\n</table>"


def render_html(
    result: AnalysisResult,
    frame: pd.DataFrame,
    *,
    title: str = "Experiment analysis",
    n_looks: int = 50,
) -> str:
    """The self-contained HTML report (module docstring) of ``result`` on its table ``frame``."""
    metrics = list(dict.fromkeys(c.metric.name for c in result.comparisons))
    lines = [
        timeline(
            frame, result.control, m, n_looks=n_looks, alpha=result.alpha, tuning=result.tuning
        )
        for m in metrics
    ]
    rec = result.recommendation
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in rec.reasons)
    guardrails = "".join(
        f"<li><b>{html.escape(g.verdict)}</b> ({html.escape(g.variant)}): "
        f"{html.escape(g.reason)}</li>"
        for g in result.guardrails
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    test = "confidence sequence" if result.decision_test == "sequential" else "fixed-horizon test"
    decision = DECISION_LABEL[rec.decision] + (f" {rec.variant}" if rec.variant else "")
    images = [
        ("Lift per metric", lift_plot(result)),
        ("Cumulative metric per variant", cumulative_plot(lines)),
        ("Lift over time with the sequential boundary", sequential_plot(lines)),
    ]
    figures = "\n".join(
        f'<h2>{html.escape(name)}</h2><p><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{png}"></p>'
        for name, png in images
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p><b>Recommendation: {html.escape(decision)}</b> (decided on the {test}, α = {result.alpha:g})</p>
<ul>{reasons}</ul>
<p>{html.escape(_srm_line(result))}</p>
<h2>Guardrails</h2><ul>{guardrails or "<li>none</li>"}</ul>
<h2>Metrics</h2>
{_html_table(result)}
<ul>{notes}</ul>
{figures}
</body></html>
"""


def write_html(
    result: AnalysisResult,
    frame: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "Experiment analysis",
) -> Path:
    """Write :func:`render_html` to ``path``."""
    out = Path(path)
    out.write_text(render_html(result, frame, title=title))
    return out
