"""The validation gate: declared rules decide whether a new model may become challenger.

Rules are the ``[gate]`` section of the gated training pipeline's config; the
default is the four below. Each rule gives an outcome with its value, its threshold
and a sentence (:class:`RuleOutcome`); the gate passes when no rule failed.

``offline``
    The new model's ``metric`` (``recall@20``) over ``slice`` of the test users is
    at least ``champion × (1 − max_relative_drop)``, the champion scored on the same
    split and candidates (``evaluate_models``); and at least ``min_value`` if set.
``ope``
    The lower bound of the 95% interval of the new model's off-policy CTR estimate
    (``estimator``, default: the one the OPE report recommends) is at least
    ``champion's on-policy CTR × (1 − max_relative_drop)``: the CTR the champion
    version achieved on the same logged requests. The estimates describe the model
    choosing among the logged candidates; when those hold less than ``min_support``
    of the model's own top-k (a greedy champion's log holds only what it showed), they
    are no evidence about the model, and the rule is missing its evidence.
``data_checks``
    No data check of ``validate`` failed (volume, category mix against the last run).
``freshness``
    The model's training data ends at most ``max_lag_s`` before the newest event of
    the data it was given (a feed that stopped, a split cut far back: the offline
    evaluation is cut at the same place, so it cannot see this itself).
``smoke_test``
    The version loads in the server's ``ModelManager`` and answers a recommendation
    (:mod:`recops.registry.smoke`).

A rule whose evidence is absent (no champion yet, no exposure log, too few logged
requests) is ``skipped`` when ``on_missing = "skip"`` (the default: the first model
has no champion) and ``failed`` when ``on_missing = "fail"``. Example::

    [[gate.rules]]
    kind = "offline"
    metric = "recall@20"
    max_relative_drop = 0.02

    [[gate.rules]]
    kind = "ope"
    estimator = "snips"
    on_missing = "fail"
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recops.evaluation.protocol import GROUPS
from recops.pipelines.artifacts import Report
from recops.pipelines.training.evaluate import OfflineEvaluation
from recops.pipelines.training.ope import OffPolicyEvaluation
from recops.pipelines.training.validate import DataReport
from recops.registry.smoke import SmokeTest

Status = Literal["passed", "failed", "skipped"]
OnMissing = Literal["skip", "fail"]
_METRIC = re.compile(r"^(recall|ndcg|hit_rate|mrr)@[1-9][0-9]*$")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OfflineRule(_Rule):
    """The new model's offline metric is not worse than the champion's by more than a share."""

    kind: Literal["offline"] = "offline"
    metric: str = "recall@20"
    slice: str = "all"
    max_relative_drop: float = Field(default=0.02, ge=0.0, le=1.0)
    min_value: float | None = Field(default=None, ge=0.0, le=1.0)
    on_missing: OnMissing = "skip"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if not _METRIC.match(value):
            raise ValueError(
                f"metric is recall@K, ndcg@K, hit_rate@K or mrr@K with K in evaluate.ks "
                f"(got {value!r})"
            )
        return value

    @field_validator("slice")
    @classmethod
    def _known_slice(cls, value: str) -> str:
        if value not in GROUPS:
            raise ValueError(f"slice is one of {', '.join(GROUPS)} (got {value!r})")
        return value

    @property
    def name(self) -> str:
        """``offline:<metric>:<slice>``."""
        return f"offline:{self.metric}:{self.slice}"


class OPERule(_Rule):
    """The OPE lower bound of the new model's CTR is not below the champion's on-policy CTR."""

    kind: Literal["ope"] = "ope"
    estimator: str | None = Field(default=None, description="default: the report's recommended")
    max_relative_drop: float = Field(default=0.0, ge=0.0, le=1.0)
    min_support: float = Field(default=0.5, ge=0.0, le=1.0)
    on_missing: OnMissing = "skip"

    @property
    def name(self) -> str:
        """``ope:<estimator>``."""
        return f"ope:{self.estimator or 'recommended'}"


class DataChecksRule(_Rule):
    """No failed data check."""

    kind: Literal["data_checks"] = "data_checks"

    @property
    def name(self) -> str:
        """``data_checks``."""
        return "data_checks"


class FreshnessRule(_Rule):
    """The training data ends at most ``max_lag_s`` before the newest event."""

    kind: Literal["freshness"] = "freshness"
    max_lag_s: float = Field(gt=0.0)
    on_missing: OnMissing = "skip"

    @property
    def name(self) -> str:
        """``freshness``."""
        return "freshness"


class SmokeTestRule(_Rule):
    """The artifact loads in the server and answers a recommendation of ``k`` items."""

    kind: Literal["smoke_test"] = "smoke_test"
    k: int = Field(default=10, ge=1, le=1000)

    @property
    def name(self) -> str:
        """``smoke_test``."""
        return "smoke_test"


Rule = Annotated[
    OfflineRule | OPERule | DataChecksRule | FreshnessRule | SmokeTestRule,
    Field(discriminator="kind"),
]


def _default_rules() -> tuple[Rule, ...]:
    return (OfflineRule(), OPERule(), DataChecksRule(), SmokeTestRule())


class GateConfig(_Rule):
    """The ``[gate]`` section: the rules (see the module docstring)."""

    rules: tuple[Rule, ...] = Field(default_factory=_default_rules)

    @field_validator("rules")
    @classmethod
    def _distinct(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"each rule once (repeated: {', '.join(repeated)})")
        return rules

    def smoke_k(self) -> int | None:
        """The ``k`` of the smoke test rule, or None when there is none."""
        found = [r.k for r in self.rules if isinstance(r, SmokeTestRule)]
        return found[0] if found else None


class RuleOutcome(Report):
    """One rule's verdict: its value against its threshold, and why."""

    rule: str
    status: Status
    value: float | None
    threshold: float | None
    message: str

    def describe(self) -> str:
        """``rule: status: message``."""
        return f"{self.rule}: {self.status}: {self.message}"


class GateResult(Report):
    """The gate's verdict on one registered version, with every rule's outcome."""

    passed: bool
    model: str
    version: str
    repository_version: str
    champion_version: str | None
    outcomes: tuple[RuleOutcome, ...]
    decided_at: float

    def failed(self) -> list[RuleOutcome]:
        """The outcomes that failed the gate."""
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        """One line: the verdict and the failed rules (or the count of passed ones)."""
        if self.passed:
            done = sum(o.status == "passed" for o in self.outcomes)
            skipped = sum(o.status == "skipped" for o in self.outcomes)
            return f"passed ({done} rules passed, {skipped} skipped)"
        return "failed: " + "; ".join(o.describe() for o in self.failed())


@dataclass(frozen=True)
class Evidence:
    """What the rules judge: the pipeline's reports and the smoke test of the version.

    Parameters
    ----------
    model:
        The model name (the exposure log names versions ``<model>:<version>``).
    offline:
        ``evaluate_models``: the new model and the champion on the same split.
    data_report:
        ``validate``: the data checks.
    ope:
        ``off_policy``, None when no exposure log was configured.
    smoke:
        The smoke test, None when the gate has no such rule.
    """

    model: str
    offline: OfflineEvaluation
    data_report: DataReport
    ope: OffPolicyEvaluation | None
    smoke: SmokeTest | None


def _missing(rule: OfflineRule | OPERule | FreshnessRule, message: str) -> RuleOutcome:
    status: Status = "skipped" if rule.on_missing == "skip" else "failed"
    return RuleOutcome(rule=rule.name, status=status, value=None, threshold=None, message=message)


def _offline(rule: OfflineRule, evidence: Evidence) -> RuleOutcome:
    offline = evidence.offline
    score = offline.candidate.metrics.get(rule.slice, {}).get(rule.metric)
    if score is None or score.mean is None:
        known = sorted(offline.candidate.metrics.get("all", {}))
        return _missing(
            rule,
            f"the evaluation has no {rule.metric} for slice {rule.slice!r} "
            f"(metrics: {', '.join(known) or 'none'}; set evaluate.ks)",
        )
    value = score.mean
    floor = rule.min_value
    if offline.champion is None:
        if floor is None:
            return _missing(rule, "no champion to compare with (the first model)")
        passed = value >= floor
        return RuleOutcome(
            rule=rule.name,
            status="passed" if passed else "failed",
            value=value,
            threshold=floor,
            message=f"{value:.4f} {'>=' if passed else '<'} min_value {floor:.4f}, no champion",
        )
    old = offline.champion.metrics.get(rule.slice, {}).get(rule.metric)
    if old is None or old.mean is None:
        return _missing(rule, f"the champion has no {rule.metric} for slice {rule.slice!r}")
    threshold = old.mean * (1.0 - rule.max_relative_drop)
    if floor is not None:
        threshold = max(threshold, floor)
    passed = value >= threshold
    saw = " (the champion saw the test period: its score is optimistic)"
    message = (
        f"{value:.4f} {'>=' if passed else '<'} {threshold:.4f} = champion "
        f"{evidence.model}/{offline.champion_version} {old.mean:.4f} × "
        f"(1 − {rule.max_relative_drop:g})" + (saw if offline.champion_saw_test_period else "")
    )
    return RuleOutcome(
        rule=rule.name,
        status="passed" if passed else "failed",
        value=value,
        threshold=threshold,
        message=message,
    )


def _ope(rule: OPERule, evidence: Evidence) -> RuleOutcome:
    ope = evidence.ope
    if ope is None:
        return _missing(rule, "no exposure log configured (ope.event_log)")
    if not ope.evaluated:
        return _missing(rule, f"OPE not evaluated: {ope.reason}")
    champion = evidence.offline.champion_version
    if champion is None:
        return _missing(rule, "no champion whose on-policy CTR to compare with")
    if ope.support is not None and ope.support < rule.min_support:
        return _missing(
            rule,
            f"the logged candidates hold {ope.support:.0%} of the slates this model would "
            f"show (min_support {rule.min_support:.0%}): OPE on them judges a re-ranking of "
            "what was logged, not this model",
        )
    wanted = rule.estimator or ope.recommended
    if wanted is None:
        # Poor overlap: the report trusts no estimator, so the logs are no evidence.
        return _missing(rule, f"the OPE report recommends no estimator: {ope.reason}")
    estimate = next((e for e in ope.estimates if e.estimator == wanted), None)
    if estimate is None:
        have = ", ".join(e.estimator for e in ope.estimates)
        return RuleOutcome(
            rule=rule.name,
            status="failed",
            value=None,
            threshold=None,
            message=f"no estimate by {wanted!r} in the OPE report (estimators: {have})",
        )
    key = f"{evidence.model}:{champion}"
    logged = ope.logged_by_version.get(key)
    if logged is None:
        served = ", ".join(sorted(ope.logged_by_version)) or "none"
        return _missing(rule, f"the champion {key} served none of the logged requests ({served})")
    threshold = logged * (1.0 - rule.max_relative_drop)
    passed = estimate.ci_low >= threshold
    message = (
        f"{wanted} lower bound {estimate.ci_low:.4f} (estimate {estimate.value:.4f}) "
        f"{'>=' if passed else '<'} {threshold:.4f} = champion {key} on-policy CTR "
        f"{logged:.4f} × (1 − {rule.max_relative_drop:g}); overlap {ope.overlap or 'unknown'}"
    )
    return RuleOutcome(
        rule=rule.name,
        status="passed" if passed else "failed",
        value=estimate.ci_low,
        threshold=threshold,
        message=message,
    )


def _freshness(rule: FreshnessRule, evidence: Evidence) -> RuleOutcome:
    split = evidence.offline.split
    train_end, data_end = split.get("train_end"), split.get("data_end")
    if not isinstance(train_end, int) or not isinstance(data_end, int):
        return _missing(rule, "the split does not say where the training data ends")
    lag = float(data_end - train_end)
    passed = lag <= rule.max_lag_s
    message = (
        f"the training data ends {lag / 86_400:.2f} days before the newest event "
        f"({'<=' if passed else '>'} {rule.max_lag_s / 86_400:.2f} days)"
    )
    return RuleOutcome(
        rule=rule.name,
        status="passed" if passed else "failed",
        value=lag,
        threshold=rule.max_lag_s,
        message=message,
    )


def _data_checks(rule: DataChecksRule, evidence: Evidence) -> RuleOutcome:
    report = evidence.data_report
    if not report.baseline:
        message = "no earlier run to compare with: schema checks only"
        return RuleOutcome(rule=rule.name, status="passed", value=0, threshold=0, message=message)
    failed = [c for c in report.checks if not c.passed]
    if failed:
        message = "; ".join(
            f"{c.name}: {c.message} ({c.value if c.value is None else round(c.value, 4)} > "
            f"{c.threshold})"
            for c in failed
        )
    else:
        message = "passed: " + ", ".join(c.name for c in report.checks)
    return RuleOutcome(
        rule=rule.name,
        status="failed" if failed else "passed",
        value=float(len(failed)),
        threshold=0.0,
        message=message,
    )


def _smoke(rule: SmokeTestRule, evidence: Evidence) -> RuleOutcome:
    smoke = evidence.smoke
    if smoke is None:
        return RuleOutcome(
            rule=rule.name,
            status="failed",
            value=None,
            threshold=None,
            message="the smoke test did not run",
        )
    return RuleOutcome(
        rule=rule.name,
        status="passed" if smoke.passed else "failed",
        value=float(smoke.items),
        threshold=1.0,
        message=f"{smoke.message} in {smoke.seconds:.2f} s",
    )


def evaluate_gate(
    config: GateConfig, evidence: Evidence, version: str, repository_version: str
) -> GateResult:
    """Judge ``version`` (``repository_version`` in the model repository) by every rule."""
    outcomes = []
    for rule in config.rules:
        if isinstance(rule, OfflineRule):
            outcomes.append(_offline(rule, evidence))
        elif isinstance(rule, OPERule):
            outcomes.append(_ope(rule, evidence))
        elif isinstance(rule, DataChecksRule):
            outcomes.append(_data_checks(rule, evidence))
        elif isinstance(rule, FreshnessRule):
            outcomes.append(_freshness(rule, evidence))
        else:
            outcomes.append(_smoke(rule, evidence))
    return GateResult(
        passed=all(o.status != "failed" for o in outcomes),
        model=evidence.model,
        version=version,
        repository_version=repository_version,
        champion_version=evidence.offline.champion_version,
        outcomes=tuple(outcomes),
        decided_at=time.time(),
    )
