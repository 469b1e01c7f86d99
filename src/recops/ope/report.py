"""Run every estimator on one target, say which to trust, and write JSON / HTML.

The recommendation follows the overlap between the logging and the target policy,
measured by the Kish effective sample size (ESS) of the importance weights:

* ``ESS < min_ess`` or ``ESS / n < 1%`` — **poor overlap**: the logs hold almost no
  information about the target; no estimate is recommended (IPS-type intervals are
  then wide, and DM is only as good as its model, which nothing checks).
* ``ESS / n < 10%`` — **moderate**: weights are heavy-tailed, so a self-normalised or
  shrunk estimator (SNDR with a reward model, else SNIPS).
* otherwise — **good**: DR (with a reward model), else SNIPS.

It also warns when DM falls outside DR's interval (the reward model is biased where
the target goes), so DM should not be read on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.table import Table

from recops.ope.base import BaseEstimator, Estimate, IntervalMethod
from recops.ope.batch import OPEBatch
from recops.ope.direct import DirectMethod
from recops.ope.doubly_robust import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    SelfNormalizedDR,
    SwitchDoublyRobust,
)
from recops.ope.importance import InverseProbabilityWeighting, SelfNormalizedIPW

POOR_ESS_FRACTION = 0.01
MODERATE_ESS_FRACTION = 0.10


@dataclass(frozen=True)
class Recommendation:
    """Which estimate to trust, and why.

    Parameters
    ----------
    estimator:
        Name of the estimate to trust, or None when none should be.
    overlap:
        ``"good"``, ``"moderate"`` or ``"poor"``.
    reason:
        One sentence for the reader.
    warnings:
        Further cautions (e.g. DM disagreeing with DR).
    """

    estimator: str | None
    overlap: str
    reason: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class OPEReport:
    """Estimates of one target policy, with the recommendation.

    Parameters
    ----------
    estimates:
        One :class:`Estimate` per estimator.
    recommendation:
        Which to trust.
    truth:
        The true value when known (simulation), for plots and reports.
    title:
        A short title.
    """

    estimates: tuple[Estimate, ...]
    recommendation: Recommendation
    truth: float | None = None
    title: str = "Off-policy evaluation"
    metadata: dict[str, Any] = field(default_factory=dict)

    def by_name(self) -> dict[str, Estimate]:
        """Estimates keyed by estimator name."""
        return {e.estimator: e for e in self.estimates}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``estimates`` keyed by name, recommendation, truth."""
        return {
            "title": self.title,
            "estimates": {e.estimator: e.to_dict() for e in self.estimates},
            "recommendation": {
                "estimator": self.recommendation.estimator,
                "overlap": self.recommendation.overlap,
                "reason": self.recommendation.reason,
                "warnings": list(self.recommendation.warnings),
            },
            "truth": self.truth,
            "metadata": self.metadata,
        }

    def table(self) -> Table:
        """A rich table of the estimates (``*`` marks the recommended one).

        When the truth is known (simulation), a column gives each estimate's error.
        """
        from rich.table import Table

        # Four significant digits: an interval's width is rarely below 1%, and six
        # made the table wrap at 80 columns.

        level = f"{1 - self.estimates[0].alpha:.0%}" if self.estimates else ""
        table = Table(title=self.title)
        columns = ["estimator", "value", f"{level} interval", "ESS", "max weight"]
        if self.truth is not None:
            columns.append("error vs truth")
        for column in columns:
            table.add_column(column, justify="right")
        for e in self.estimates:
            mark = " *" if e.estimator == self.recommendation.estimator else ""
            row = [
                e.estimator + mark,
                f"{e.value:.4g}",
                f"[{e.ci_low:.4g}, {e.ci_high:.4g}]",
                f"{e.ess:.1f}",
                f"{e.max_weight:.3g}",
            ]
            if self.truth is not None:
                row.append(f"{e.value - self.truth:+.4f}")
            table.add_row(*row)
        return table

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON."""
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=2, default=_jsonable) + "\n")
        return out

    def write_html(self, path: str | Path) -> Path:
        """A self-contained HTML page: the table and a plot (PNG inlined as base64)."""
        out = Path(path)
        out.write_text(_html_page(self))
        return out


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def default_estimators(with_reward_model: bool) -> list[BaseEstimator[OPEBatch]]:
    """The standard estimators; DM and the DR family only with a reward model."""
    estimators: list[BaseEstimator[OPEBatch]] = [InverseProbabilityWeighting(), SelfNormalizedIPW()]
    if with_reward_model:
        estimators += [
            DirectMethod(),
            DoublyRobust(),
            SelfNormalizedDR(),
            SwitchDoublyRobust(),
            DoublyRobustWithShrinkage(),
        ]
    return estimators


def recommend(estimates: Sequence[Estimate], min_ess: float = 30.0) -> Recommendation:
    """Pick the estimate to trust from overlap (see the module docstring).

    Parameters
    ----------
    estimates:
        Estimates of one target on one batch.
    min_ess:
        Below this ESS, overlap is poor whatever the fraction.

    Returns
    -------
    Recommendation
    """
    if not estimates:
        raise ValueError("`estimates` must not be empty")
    named = {e.estimator: e for e in estimates}
    first = estimates[0]
    ess, fraction = first.ess, first.ess_fraction
    warnings: list[str] = []
    if "dm" in named and "dr" in named:
        dm, dr = named["dm"], named["dr"]
        if not dr.ci_low <= dm.value <= dr.ci_high:
            warnings.append(
                f"DM ({dm.value:.4g}) lies outside DR's interval [{dr.ci_low:.4g}, "
                f"{dr.ci_high:.4g}]: the reward model is biased where the target goes."
            )
    if ess < min_ess or fraction < POOR_ESS_FRACTION:
        return Recommendation(
            estimator=None,
            overlap="poor",
            reason=(
                f"Poor overlap: ESS {ess:.1f} of {first.n} ({fraction:.2%}). The logs say "
                "little about this policy; trust no point estimate — log it with more "
                "exploration or run an A/B test."
            ),
            warnings=tuple(warnings),
        )
    if fraction < MODERATE_ESS_FRACTION:
        choice = "sndr" if "sndr" in named else "snips"
        overlap = "moderate"
        reason = (
            f"Moderate overlap: ESS {ess:.0f} of {first.n} ({fraction:.1%}); heavy weights "
            f"favour the self-normalised {choice.upper()}."
        )
    else:
        choice = "dr" if "dr" in named else "snips"
        overlap = "good"
        reason = (
            f"Good overlap: ESS {ess:.0f} of {first.n} ({fraction:.1%}); "
            f"{choice.upper()} is unbiased with low variance here."
        )
    if choice not in named:
        choice = first.estimator
    return Recommendation(choice, overlap, reason, tuple(warnings))


def evaluate_policy(
    batch: OPEBatch,
    estimators: Sequence[BaseEstimator[OPEBatch]] | None = None,
    *,
    interval: IntervalMethod = "normal",
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | None = 0,
    truth: float | None = None,
    title: str = "Off-policy evaluation",
) -> OPEReport:
    """Run estimators on one batch and recommend one.

    Parameters
    ----------
    batch:
        Logs and target, e.g. from :meth:`OPEBatch.from_action_dist`.
    estimators:
        Default: :func:`default_estimators` (with DM/DR when the batch has ``q̂``).
    interval, alpha, n_bootstrap, random_state:
        Passed to :meth:`BaseEstimator.estimate`.
    truth:
        The true value, when known.
    title:
        Report title.

    Returns
    -------
    OPEReport
    """
    if estimators is None:
        estimators = default_estimators(batch.q_hat_factual is not None)
    estimates = tuple(
        e.estimate(
            batch,
            interval=interval,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            random_state=random_state,
        )
        for e in estimators
    )
    return OPEReport(estimates, recommend(estimates), truth=truth, title=title)


def _plot_png(report: OPEReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e.estimator for e in report.estimates]
    values = np.array([e.value for e in report.estimates])
    low = values - np.array([e.ci_low for e in report.estimates])
    high = np.array([e.ci_high for e in report.estimates]) - values
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    y = np.arange(len(names))[::-1]
    colors = ["tab:green" if n == report.recommendation.estimator else "tab:blue" for n in names]
    for yi, v, lo, hi, color in zip(y, values, low, high, colors, strict=True):
        ax.errorbar([v], [yi], xerr=[[lo], [hi]], fmt="o", color=color, capsize=4)
    if report.truth is not None:
        ax.axvline(report.truth, color="tab:red", linestyle="--", label="truth")
        ax.legend(loc="best")
    ax.set_yticks(y, names)
    ax.set_xlabel(f"estimated policy value ({1 - report.estimates[0].alpha:.0%} interval)")
    ax.set_title(report.title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _html_page(report: OPEReport) -> str:
    png = base64.b64encode(_plot_png(report)).decode("ascii")
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in (
                e.estimator,
                f"{e.value:.4g}",
                f"[{e.ci_low:.4g}, {e.ci_high:.4g}]",
                f"{e.ess:.1f}",
                f"{e.max_weight:.3g}",
            )
        )
        + "</tr>"
        for e in report.estimates
    )
    rec = report.recommendation
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in rec.warnings)
    truth = "" if report.truth is None else f"<p>True value: {report.truth:.6g}</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>
<body><h1>{html.escape(report.title)}</h1>
<p><b>Recommendation:</b> {html.escape(str(rec.estimator))} ({html.escape(rec.overlap)}
overlap). {html.escape(rec.reason)}</p><ul>{warnings}</ul>{truth}
<table><tr><th>estimator</th><th>value</th><th>interval</th><th>ESS</th>
<th>max weight</th></tr>
{rows}
</table>
<p><img alt="estimates with intervals" src="data:image/png;base64,{png}"></p>
</body></html>
"""
