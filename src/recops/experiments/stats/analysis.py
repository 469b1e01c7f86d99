"""``analyze``: every test of an A/B experiment on its per-unit table, and one verdict.

For each treatment variant against control and each metric: the fixed-horizon Welch /
delta-method test, the always-valid confidence sequence, CUPED where the table has the
metric's ``pre_`` columns; the sample-ratio-mismatch test; Holm and Benjamini–Hochberg
adjustments over the variants × metrics family; the guardrails' verdicts; and a
recommendation, decided in this order:

1. **SRM** (``p < srm_threshold``): the assignment is broken; do not read the result.
2. **Not enough data**: an arm with fewer than ``min_units`` units: keep running.
3. Per treatment, on the *primary* metric (the first of ``metrics``), with the test
   named by ``decision`` (``"sequential"``, safe to read at any time; or ``"fixed"``,
   valid only at the pre-planned sample size), CUPED-adjusted when possible, and the
   Holm-adjusted p-value of the family:

   * a failed guardrail, or a significant change in the wrong direction: don't ship;
   * a significant improvement with every guardrail passed: ship;
   * a significant improvement with a guardrail not yet shown safe: keep running;
   * nothing significant: keep running (sequential) or don't ship (fixed horizon:
     the planned sample showed no effect).

The result ships the best improving treatment, else keeps running if any treatment
may still win, else does not ship.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from recops.experiments.stats._validation import check_alpha
from recops.experiments.stats.cuped import cuped
from recops.experiments.stats.fixed import FixedHorizonTest, welch_test
from recops.experiments.stats.guardrails import Guardrail, GuardrailVerdict, judge_guardrail
from recops.experiments.stats.metrics import Metric
from recops.experiments.stats.multiple import benjamini_hochberg, holm
from recops.experiments.stats.sequential import DEFAULT_TUNING, SequentialTest, sequential_test
from recops.experiments.stats.srm import SRM_THRESHOLD, SampleRatioTest, sample_ratio_test
from recops.experiments.stats.summary import ArmSummary
from recops.experiments.stats.table import TIMESTAMP, check_unit_table
from recops.ope._validation import check_positive_float, check_positive_int

Decision = Literal["ship", "dont_ship", "keep_running"]
DecisionTest = Literal["sequential", "fixed"]
Goal = Literal["increase", "decrease"]
Role = Literal["primary", "secondary", "guardrail"]
SCHEMA = "recops.experiment_analysis/1"


@dataclass(frozen=True)
class CupedResult:
    """The CUPED-adjusted tests of one metric and treatment.

    Parameters
    ----------
    theta:
        The regression coefficient on the pre-period metric.
    variance_reduction:
        ``1 − Var(Δ̂_CUPED) / Var(Δ̂)``.
    control, treatment:
        The adjusted arms.
    fixed, sequential:
        The tests on the adjusted arms.
    """

    theta: float
    variance_reduction: float
    control: ArmSummary
    treatment: ArmSummary
    fixed: FixedHorizonTest
    sequential: SequentialTest

    def to_dict(self) -> dict[str, Any]:
        """``theta``, ``variance_reduction``, ``fixed``, ``sequential``."""
        return {
            "theta": self.theta,
            "variance_reduction": self.variance_reduction,
            "fixed": self.fixed.to_dict(),
            "sequential": self.sequential.to_dict(),
        }


@dataclass(frozen=True)
class AdjustedPValues:
    """Holm and Benjamini–Hochberg adjusted p-values of one (metric, treatment).

    They adjust the absolute lift's p-values of the primary and secondary metrics
    (the CUPED ones where a pre-period column exists), over variants × metrics.
    """

    fixed_holm: float
    fixed_bh: float
    sequential_holm: float
    sequential_bh: float
    uses_cuped: bool

    def to_dict(self) -> dict[str, Any]:
        """``{"fixed": {"holm", "bh"}, "sequential": {"holm", "bh"}, "uses_cuped"}``."""
        return {
            "fixed": {"holm": self.fixed_holm, "bh": self.fixed_bh},
            "sequential": {"holm": self.sequential_holm, "bh": self.sequential_bh},
            "uses_cuped": self.uses_cuped,
        }


@dataclass(frozen=True)
class Comparison:
    """One treatment against control on one metric.

    Parameters
    ----------
    metric:
        The metric.
    variant:
        The treatment.
    role:
        ``"primary"``, ``"secondary"`` or ``"guardrail"``.
    control, treatment:
        The unadjusted arms.
    fixed, sequential:
        The unadjusted tests.
    cuped:
        The CUPED result, when the table has the metric's pre-period columns.
    adjusted:
        Multiple-testing adjusted p-values (None for guardrail-only metrics).
    """

    metric: Metric
    variant: str
    role: Role
    control: ArmSummary
    treatment: ArmSummary
    fixed: FixedHorizonTest
    sequential: SequentialTest
    cuped: CupedResult | None = None
    adjusted: AdjustedPValues | None = None

    def read(self, test: DecisionTest, use_cuped: bool = True) -> FixedHorizonTest | SequentialTest:
        """The test a decision reads: ``test``, CUPED-adjusted when available and wanted."""
        if use_cuped and self.cuped is not None:
            return self.cuped.sequential if test == "sequential" else self.cuped.fixed
        return self.sequential if test == "sequential" else self.fixed


@dataclass(frozen=True)
class Recommendation:
    """The final call.

    Parameters
    ----------
    decision:
        ``"ship"``, ``"dont_ship"`` or ``"keep_running"``.
    variant:
        The variant to ship (None unless ``decision == "ship"``).
    reasons:
        Why, one sentence each (the deciding one first).
    """

    decision: Decision
    variant: str | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """``decision``, ``variant``, ``reasons``."""
        return {"decision": self.decision, "variant": self.variant, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`analyze` found; :meth:`to_dict` is the documented JSON."""

    control: str
    treatments: tuple[str, ...]
    alpha: float
    decision_test: DecisionTest
    goal: Goal
    tuning: float
    units: dict[str, int]
    srm: SampleRatioTest
    comparisons: tuple[Comparison, ...]
    guardrails: tuple[GuardrailVerdict, ...]
    recommendation: Recommendation
    notes: tuple[str, ...] = field(default=())

    @property
    def primary_metric(self) -> str:
        """The name of the metric the decision is about."""
        return next(c.metric.name for c in self.comparisons if c.role == "primary")

    def comparison(self, metric: str, variant: str) -> Comparison:
        """The comparison of ``variant`` against control on ``metric``."""
        for c in self.comparisons:
            if c.metric.name == metric and c.variant == variant:
                return c
        raise KeyError(f"no comparison for metric {metric!r} and variant {variant!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (non-finite numbers become ``None``).

        ``schema``, ``control``, ``treatments``, ``alpha``, ``decision_test``, ``goal``,
        ``tuning``, ``primary_metric``, ``units`` (per variant), ``srm``
        (:meth:`SampleRatioTest.to_dict`), ``metrics`` (by metric name: ``kind``,
        ``role``, ``control`` {``n``, ``mean``, ``std_error``} and ``variants`` by
        treatment: ``n``, ``mean``, ``std_error``, ``fixed``, ``sequential``, ``cuped``
        (None without pre-period columns) and ``adjusted_p``), ``guardrails`` (list of
        :meth:`GuardrailVerdict.to_dict`), ``recommendation`` and ``notes``.
        """
        metrics: dict[str, Any] = {}
        for c in self.comparisons:
            entry = metrics.setdefault(
                c.metric.name,
                {
                    "kind": c.metric.kind,
                    "role": c.role,
                    "control": _arm_dict(c.control),
                    "variants": {},
                },
            )
            entry["variants"][c.variant] = {
                **_arm_dict(c.treatment),
                "fixed": c.fixed.to_dict(),
                "sequential": c.sequential.to_dict(),
                "cuped": None if c.cuped is None else c.cuped.to_dict(),
                "adjusted_p": None if c.adjusted is None else c.adjusted.to_dict(),
            }
        out = {
            "schema": SCHEMA,
            "control": self.control,
            "treatments": list(self.treatments),
            "alpha": self.alpha,
            "decision_test": self.decision_test,
            "goal": self.goal,
            "tuning": self.tuning,
            "primary_metric": self.primary_metric,
            "units": dict(self.units),
            "srm": self.srm.to_dict(),
            "metrics": metrics,
            "guardrails": [g.to_dict() for g in self.guardrails],
            "recommendation": self.recommendation.to_dict(),
            "notes": list(self.notes),
        }
        return _finite(out)


def _arm_dict(arm: ArmSummary) -> dict[str, Any]:
    return {"n": arm.n, "mean": arm.mean, "std_error": arm.std_error}


def _finite(value: Any) -> Any:
    """Replace nan/inf (not JSON) by None, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _compare(
    metric: Metric,
    role: Role,
    control_cols: dict[str, np.ndarray],
    treatment_cols: dict[str, np.ndarray],
    variant: str,
    alpha: float,
    tuning: float,
) -> Comparison:
    control = metric.summarize(control_cols)
    treatment = metric.summarize(treatment_cols)
    cuped_result = None
    if all(c in control_cols for c in metric.pre_columns) and min(control.n, treatment.n) >= 2:
        adj = cuped(metric.cuped_arm(control_cols), metric.cuped_arm(treatment_cols))
        cuped_result = CupedResult(
            theta=adj.theta,
            variance_reduction=adj.variance_reduction,
            control=adj.control,
            treatment=adj.treatment,
            fixed=welch_test(adj.control, adj.treatment, alpha),
            sequential=sequential_test(adj.control, adj.treatment, alpha, tuning),
        )
    return Comparison(
        metric=metric,
        variant=variant,
        role=role,
        control=control,
        treatment=treatment,
        fixed=welch_test(control, treatment, alpha),
        sequential=sequential_test(control, treatment, alpha, tuning),
        cuped=cuped_result,
    )


def _with_adjusted(comparisons: list[Comparison], use_cuped: bool) -> list[Comparison]:
    family = [i for i, c in enumerate(comparisons) if c.role != "guardrail"]
    fixed_p = [comparisons[i].read("fixed", use_cuped).absolute.p_value for i in family]
    seq_p = [comparisons[i].read("sequential", use_cuped).absolute.p_value for i in family]
    adjusted = (holm(fixed_p), benjamini_hochberg(fixed_p), holm(seq_p), benjamini_hochberg(seq_p))
    out = list(comparisons)
    for k, i in enumerate(family):
        c = comparisons[i]
        out[i] = replace(
            c,
            adjusted=AdjustedPValues(
                fixed_holm=float(adjusted[0][k]),
                fixed_bh=float(adjusted[1][k]),
                sequential_holm=float(adjusted[2][k]),
                sequential_bh=float(adjusted[3][k]),
                uses_cuped=use_cuped and c.cuped is not None,
            ),
        )
    return out


def _variant_call(
    primary: Comparison,
    verdicts: Sequence[GuardrailVerdict],
    decision_test: DecisionTest,
    goal: Goal,
    alpha: float,
    use_cuped: bool,
) -> tuple[Decision, float, str]:
    """One treatment's call, its improvement (for ranking) and the reason."""
    variant, name = primary.variant, primary.metric.name
    failed = [v for v in verdicts if v.verdict == "fail"]
    if failed:
        return "dont_ship", -math.inf, f"{variant}: {failed[0].reason}"
    test = primary.read(decision_test, use_cuped)
    assert primary.adjusted is not None
    p = (
        primary.adjusted.sequential_holm
        if decision_test == "sequential"
        else primary.adjusted.fixed_holm
    )
    lift = test.relative if math.isfinite(test.relative.estimate) else test.absolute
    improvement = (1.0 if goal == "increase" else -1.0) * test.absolute.estimate
    label = "confidence sequence" if decision_test == "sequential" else "fixed-horizon test"
    shown = (
        f"{name} {lift.estimate:+.3g}{'' if lift is test.absolute else ' (relative)'} "
        f"[{lift.ci_low:+.3g}, {lift.ci_high:+.3g}], {label}, Holm p = {p:.3g}"
    )
    if not math.isfinite(p):
        return "keep_running", improvement, f"{variant}: not enough data to test {name}"
    if p >= alpha:
        if decision_test == "sequential":
            return "keep_running", improvement, f"{variant}: no significant effect yet ({shown})"
        return (
            "dont_ship",
            improvement,
            (f"{variant}: no significant effect at the planned horizon ({shown})"),
        )
    if improvement < 0:
        return "dont_ship", improvement, f"{variant}: significantly worse ({shown})"
    pending = [v for v in verdicts if v.verdict != "pass"]
    if pending:
        return (
            "keep_running",
            improvement,
            (f"{variant}: significantly better ({shown}), but {pending[0].reason}"),
        )
    return "ship", improvement, f"{variant}: significantly better ({shown}), guardrails passed"


def _recommend(
    srm: SampleRatioTest,
    units: Mapping[str, int],
    min_units: int,
    primaries: Sequence[Comparison],
    verdicts: Sequence[GuardrailVerdict],
    decision_test: DecisionTest,
    goal: Goal,
    alpha: float,
    use_cuped: bool,
) -> Recommendation:
    if srm.mismatch:
        counts = ", ".join(f"{k} {v}" for k, v in srm.counts.items())
        return Recommendation(
            "dont_ship",
            None,
            (
                f"SRM: assignment is broken, do not read the result (units {counts} against "
                f"the configured weights: χ² = {srm.statistic:.2f}, p = {srm.p_value:.2g} "
                f"< {srm.threshold:g})",
            ),
        )
    small = {k: n for k, n in units.items() if n < min_units}
    if small:
        listed = ", ".join(f"{k} has {n}" for k, n in small.items())
        return Recommendation(
            "keep_running",
            None,
            (f"not enough data: {listed} units (at least {min_units} per variant needed)",),
        )
    calls = [
        _variant_call(
            c,
            [v for v in verdicts if v.variant == c.variant],
            decision_test,
            goal,
            alpha,
            use_cuped,
        )
        for c in primaries
    ]
    reasons = [reason for _, _, reason in calls]
    ships = [
        (imp, c.variant, r)
        for (call, imp, r), c in zip(calls, primaries, strict=True)
        if call == "ship"
    ]
    if ships:
        _, variant, reason = max(ships, key=lambda s: s[0])
        return Recommendation("ship", variant, (reason, *(r for r in reasons if r != reason)))
    if any(call == "keep_running" for call, _, _ in calls):
        first = next(r for (call, _, r) in calls if call == "keep_running")
        return Recommendation("keep_running", None, (first, *(r for r in reasons if r != first)))
    return Recommendation("dont_ship", None, tuple(reasons))


def analyze(
    frame: pd.DataFrame,
    control: str,
    metrics: Sequence[str | Metric],
    guardrails: Sequence[Guardrail | str | Mapping[str, Any] | object] = (),
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    *,
    decision: DecisionTest = "sequential",
    goal: Goal = "increase",
    tuning: float = DEFAULT_TUNING,
    use_cuped: bool = True,
    min_units: int = 100,
    srm_threshold: float = SRM_THRESHOLD,
) -> AnalysisResult:
    """Analyse an A/B test from its per-unit table (see the module docstring).

    Parameters
    ----------
    frame:
        One row per unit: ``unit_id``, ``variant``, the metrics' columns, optional
        ``pre_<column>`` (CUPED) and ``timestamp``.
    control:
        The control variant.
    metrics:
        Metric names (``clicks``, ``clicks/impressions``); the first is the primary
        metric the decision is about, the others are secondary.
    guardrails:
        :class:`Guardrail` objects, ``"metric:direction:max_relative_change"`` strings,
        or mappings / config objects with those three fields.
    weights:
        Configured allocation per variant for the SRM test (default: equal).
    alpha:
        Significance level of every test and interval.
    decision:
        ``"sequential"`` (read at any time) or ``"fixed"`` (read once, at the planned
        sample size).
    goal:
        Whether the primary metric should ``"increase"`` or ``"decrease"``.
    tuning:
        The confidence sequence's ``τ`` (units at which it is narrowest).
    use_cuped:
        Decide on CUPED-adjusted results where pre-period columns exist.
    min_units:
        Fewer units than this in any arm: keep running, whatever the tests say.
    srm_threshold:
        SRM when its p-value is below this.

    Returns
    -------
    AnalysisResult
    """
    alpha = check_alpha(alpha)
    tuning = check_positive_float("tuning", tuning, allow_inf=False)
    min_units = check_positive_int("min_units", min_units, low=2)
    if decision not in ("sequential", "fixed"):
        raise ValueError(f"`decision` must be 'sequential' or 'fixed' (got {decision!r})")
    if goal not in ("increase", "decrease"):
        raise ValueError(f"`goal` must be 'increase' or 'decrease' (got {goal!r})")
    parsed = [m if isinstance(m, Metric) else Metric.parse(m) for m in metrics]
    if not parsed:
        raise ValueError("`metrics` must name at least one metric (the primary one first)")
    rails = [Guardrail.from_spec(g) for g in guardrails]
    roles: dict[str, tuple[Metric, Role]] = {}
    for i, m in enumerate(parsed):
        roles.setdefault(m.name, (m, "primary" if i == 0 else "secondary"))
    for g in rails:
        gm = Metric.parse(g.metric)
        roles.setdefault(gm.name, (gm, "guardrail"))
    needed = [c for m, _ in roles.values() for c in m.columns]
    pre = [c for m, _ in roles.values() for c in m.pre_columns]
    variant, columns = check_unit_table(frame, control, needed, optional=[*pre, TIMESTAMP])
    names = list(dict.fromkeys(variant))
    treatments = tuple(n for n in names if n != control)
    counts = {n: int(np.sum(variant == n)) for n in [control, *treatments]}
    srm = sample_ratio_test(counts, weights, srm_threshold)
    masks = {n: variant == n for n in counts}
    arm_cols = {n: {c: v[mask] for c, v in columns.items()} for n, mask in masks.items()}
    comparisons = [
        _compare(m, role, arm_cols[control], arm_cols[t], t, alpha, tuning)
        for m, role in roles.values()
        for t in treatments
    ]
    comparisons = _with_adjusted(comparisons, use_cuped)
    verdicts = tuple(
        judge_guardrail(
            g,
            t,
            _by(comparisons, Metric.parse(g.metric).name, t).read(decision, use_cuped).relative,
        )
        for g in rails
        for t in treatments
    )
    notes = tuple(
        f"{m.name}: no CUPED (needs column(s) {[c for c in m.pre_columns if c not in columns]})"
        for m, _ in roles.values()
        if any(c in columns for c in m.pre_columns) and not all(c in columns for c in m.pre_columns)
    )
    primaries = [c for c in comparisons if c.role == "primary"]
    recommendation = _recommend(
        srm, counts, min_units, primaries, verdicts, decision, goal, alpha, use_cuped
    )
    return AnalysisResult(
        control=control,
        treatments=treatments,
        alpha=alpha,
        decision_test=decision,
        goal=goal,
        tuning=tuning,
        units=counts,
        srm=srm,
        comparisons=tuple(comparisons),
        guardrails=verdicts,
        recommendation=recommendation,
        notes=notes,
    )


def _by(comparisons: Sequence[Comparison], metric: str, variant: str) -> Comparison:
    return next(c for c in comparisons if c.metric.name == metric and c.variant == variant)
