"""The online tests the controller runs, through the experiment store the server applies.

Two kinds, both stored in the event log's experiment store (the running server
picks a change up within a second):

* the **test** of a cycle, ``ct-<model>-<cycle>``: variants ``champion`` (control)
  and ``challenger``, each pinned to its version's folder in the model repository,
  as an A/B test (``challenger_weight`` of the units) or an interleaving test;
* the **watch** after a promotion, ``ct-<model>-<cycle>-watch``: an A/B test whose
  control ``previous`` (the old champion) keeps ``holdback`` of the units, so the
  guardrails of the new ``champion`` are judged against it, randomised.

:func:`judge_test` and :func:`judge_watch` read the server's log
(:func:`recops.cli.experiment_logs.logged_unit_table`) and turn the analysis
(:func:`recops.experiments.stats.analyze`, or
:func:`recops.experiments.interleaving.analyze_interleaving`) into a
:class:`Verdict` with its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from recops.ct.config import ExperimentTemplate, WatchConfig
from recops.experiments.config import ExperimentConfig, ModelResolver
from recops.experiments.store_postgres import open_experiment_store

CONTROL = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
Call = Literal["ship", "dont_ship", "keep_running", "rollback"]


def test_name(model: str, cycle: int) -> str:
    """The name of a cycle's test (experiment names are at most 64 characters)."""
    return f"ct-{model[:40]}-{cycle}"


def watch_name(model: str, cycle: int) -> str:
    """The name of a cycle's watch after its promotion."""
    return f"{test_name(model, cycle)}-watch"


def test_config(
    template: ExperimentTemplate, name: str, model: str, champion: str, challenger: str
) -> ExperimentConfig:
    """The experiment of a challenger (repository folder) against the champion (folder)."""
    interleaving = template.type == "interleaving"
    weights = (0.5, 0.5) if interleaving else (1 - template.challenger_weight,
                                               template.challenger_weight)  # fmt: skip
    variants: list[dict[str, Any]] = [
        {"name": CONTROL, "model": model, "version": champion, "policy": template.control_policy},
        {"name": CHALLENGER, "model": model, "version": challenger,
         "policy": template.challenger_policy},
    ]  # fmt: skip
    if not interleaving:
        for variant, weight in zip(variants, weights, strict=True):
            variant["weight"] = weight
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "layer": template.layer,
            "type": template.type,
            "traffic": template.traffic,
            "control": CONTROL,
            "primary_metric": template.primary_metric,
            "guardrails": [] if interleaving else list(template.guardrails),
            "variants": variants,
        }
    )


def watch_config(
    template: ExperimentTemplate,
    watch: WatchConfig,
    name: str,
    model: str,
    previous: str,
    champion: str,
) -> ExperimentConfig:
    """The holdback after a promotion: ``previous`` (control) keeps ``holdback`` of the units."""
    policy = template.control_policy
    variants = [
        {"name": PREVIOUS, "model": model, "version": previous, "weight": watch.holdback},
        {"name": CONTROL, "model": model, "version": champion, "weight": 1 - watch.holdback},
    ]
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "layer": template.layer,
            "traffic": template.traffic,
            "control": PREVIOUS,
            "primary_metric": template.primary_metric,
            "guardrails": list(template.guardrails),
            "variants": [{**v, "policy": policy} for v in variants],
        }
    )


def resolver(registry: Any, repository: str | Path) -> ModelResolver:
    """Versions from the model repository, aliases through the registry (the server's view)."""
    from recops.cli.experiment import repository_resolver
    from recops.registry.resolver import registry_resolver

    return registry_resolver(registry, repository, repository_resolver(repository))


def ensure_running(
    event_log: str | Path,
    config: ExperimentConfig,
    resolve: ModelResolver,
    *,
    now: float,
    actor: str,
) -> int:
    """Create and start ``config`` unless it already runs (idempotent); its start time.

    Raises
    ------
    ExperimentStoreError
        When it was stopped already, or the layer has no room for it.
    """
    from recops.experiments.store import ExperimentNotFoundError, ExperimentStoreError

    with open_experiment_store(event_log) as store:
        try:
            record = store.get(config.name)
        except ExperimentNotFoundError:
            record = store.create(config, resolve, actor=actor, source="recops ct", now=now)
        if record.status == "stopped":
            raise ExperimentStoreError(
                f"experiment {config.name!r} was stopped at {record.stopped_at}: it cannot restart"
            )
        if record.status == "draft":
            record = store.start(config.name, resolve, actor=actor, now=now)
        assert record.started_at is not None
        return record.started_at


def ensure_stopped(event_log: str | Path, name: str, *, now: float, actor: str) -> bool:
    """Stop ``name`` if it is not stopped yet; whether this call stopped it."""
    from recops.experiments.store import ExperimentNotFoundError

    with open_experiment_store(event_log) as store:
        try:
            record = store.get(name)
        except ExperimentNotFoundError:
            return False
        if record.status == "stopped":
            return False
        store.stop(name, actor=actor, now=now)
        return True


def status(event_log: str | Path, name: str) -> str | None:
    """``draft``, ``running`` or ``stopped``; None when there is no such experiment."""
    from recops.experiments.store import ExperimentNotFoundError

    with open_experiment_store(event_log) as store:
        try:
            return store.get(name).status
        except ExperimentNotFoundError:
            return None


@dataclass(frozen=True)
class Verdict:
    """What an analysis says the controller should do, and why.

    Parameters
    ----------
    call:
        ``ship``, ``dont_ship``, ``keep_running`` (a test) or ``rollback`` (a watch).
    reasons:
        One sentence each, the deciding one first.
    units:
        Units per variant analysed.
    urgent:
        A ``dont_ship`` that must not wait for the minimum duration (a failed
        guardrail, a sample-ratio mismatch).
    detail:
        The numbers behind it (per-arm means, guardrails, the test), JSON-ready.
    """

    call: Call
    reasons: tuple[str, ...]
    units: dict[str, int] = field(default_factory=dict)
    urgent: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The deciding reason."""
        return self.reasons[0] if self.reasons else ""

    def to_dict(self) -> dict[str, Any]:
        """Every field."""
        return {
            "call": self.call,
            "reasons": list(self.reasons),
            "units": self.units,
            "urgent": self.urgent,
            **self.detail,
        }


def _logged(event_log: str | Path, name: str) -> Any:
    """The experiment's per-unit table, or None while nothing of it is logged."""
    from recops.cli.experiment_analyze import AnalysisInputError
    from recops.cli.experiment_logs import logged_unit_table

    try:
        return logged_unit_table(event_log, name)
    except AnalysisInputError:
        return None


def _ab(logged: Any, template: ExperimentTemplate, min_units: int) -> Any:
    from recops.experiments.stats import analyze

    # Only the primary metric: guardrails are judged on their own, and more metrics in
    # the family would only widen the primary's Holm adjustment.
    return analyze(
        logged.frame,
        logged.control,
        [logged.primary_metric],
        guardrails=logged.guardrails,
        weights=logged.weights,
        alpha=template.alpha,
        decision=template.decision,
        min_units=min_units,
    )


def _arms(analysis: Any) -> dict[str, Any]:
    """Per-arm means of each metric with the treatment's relative lift, for the log."""
    out: dict[str, Any] = {}
    for c in analysis.comparisons:
        test = c.read(analysis.decision_test)
        out[c.metric.name] = {
            "control": c.control.mean,
            "treatment": c.treatment.mean,
            "lift": test.relative.estimate,
            "lift_ci": [test.relative.ci_low, test.relative.ci_high],
        }
    return out


def judge_test(event_log: str | Path, name: str, template: ExperimentTemplate) -> Verdict:
    """The verdict on a cycle's test from the server's log (see the module docstring)."""
    logged = _logged(event_log, name)
    if logged is None:
        return Verdict("keep_running", ("no exposures of the test are logged yet",))
    if logged.interleaving:
        return _judge_interleaving(logged, template)
    try:
        analysis = _ab(logged, template, template.min_units)
    except ValueError as err:  # e.g. only one variant has units so far
        return Verdict("keep_running", (f"cannot be analysed yet: {err}",))
    recommendation = analysis.recommendation
    failed = [g for g in analysis.guardrails if g.verdict == "fail"]
    detail = {
        "metrics": _arms(analysis),
        "guardrails": [g.to_dict() for g in analysis.guardrails],
        "srm_p": analysis.srm.p_value,
    }
    call: Call = recommendation.decision
    if call == "ship" and recommendation.variant != CHALLENGER:
        call = "keep_running"
    return Verdict(
        call,
        recommendation.reasons,
        dict(analysis.units),
        urgent=call == "dont_ship" and (bool(failed) or analysis.srm.mismatch),
        detail=detail,
    )


def _judge_interleaving(logged: Any, template: ExperimentTemplate) -> Verdict:
    from recops.experiments.interleaving import analyze_interleaving

    frame = logged.frame
    if CONTROL not in frame.columns or CHALLENGER not in frame.columns:
        return Verdict("keep_running", ("no clicks credited to both rankings yet",))
    result = analyze_interleaving(
        frame["unit_id"],
        frame[CONTROL],
        frame[CHALLENGER],
        variant_a=CONTROL,
        variant_b=CHALLENGER,
        alpha=template.alpha,
    )
    units = {"interleaved": result.units}
    shown = (
        f"{result.wins_b} units preferred the challenger, {result.wins_a} the champion, "
        f"{result.ties} tied; sign test p = {result.p_value:.3g}"
    )
    detail = {"interleaving": result.to_dict()}
    if result.units < template.min_units:
        reason = f"not enough data: {result.units} units (at least {template.min_units} needed)"
        return Verdict("keep_running", (reason, shown), units, detail=detail)
    if result.winner == CHALLENGER:
        return Verdict("ship", (f"challenger preferred: {shown}",), units, detail=detail)
    if result.winner == CONTROL:
        return Verdict("dont_ship", (f"champion preferred: {shown}",), units, detail=detail)
    return Verdict("keep_running", (f"no preference yet: {shown}",), units, detail=detail)


def judge_watch(
    event_log: str | Path, name: str, template: ExperimentTemplate, watch: WatchConfig
) -> Verdict:
    """``rollback`` when a guardrail of the new champion failed against the holdback."""
    logged = _logged(event_log, name)
    if logged is None:
        return Verdict("keep_running", ("no exposures of the watch are logged yet",))
    try:
        analysis = _ab(logged, template, watch.min_units)
    except ValueError as err:
        return Verdict("keep_running", (f"cannot be analysed yet: {err}",))
    units = dict(analysis.units)
    detail = {
        "metrics": _arms(analysis),
        "guardrails": [g.to_dict() for g in analysis.guardrails],
        "srm_p": analysis.srm.p_value,
    }
    small = {k: n for k, n in units.items() if n < watch.min_units}
    if small:
        listed = ", ".join(f"{k} has {n}" for k, n in small.items())
        reason = f"not enough data: {listed} units (at least {watch.min_units} per variant)"
        return Verdict("keep_running", (reason,), units, detail=detail)
    failed = [g for g in analysis.guardrails if g.verdict == "fail" and g.variant == CONTROL]
    if failed:
        reasons = tuple(f"guardrail failed after promotion: {g.reason}" for g in failed)
        return Verdict("rollback", reasons, units, urgent=True, detail=detail)
    held = "; ".join(f"{g.metric}: {g.verdict}" for g in analysis.guardrails) or "no guardrails"
    return Verdict("keep_running", (f"no guardrail failed ({held})",), units, detail=detail)
