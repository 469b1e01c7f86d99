"""Gate verdicts: each rule passes, fails or is skipped with its reason; the smoke test is real."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from recops.pipelines.training.evaluate import ModelScores, OfflineEvaluation, Score
from recops.pipelines.training.ope import Estimate, OffPolicyEvaluation
from recops.pipelines.training.validate import Check, DataReport
from recops.registry.config import GatedTrainingConfig
from recops.registry.gates import (
    DataChecksRule,
    Evidence,
    FreshnessRule,
    GateConfig,
    OfflineRule,
    OPERule,
    SmokeTestRule,
    evaluate_gate,
)
from recops.registry.smoke import SmokeTest, smoke_test


def _scores(recall: float) -> ModelScores:
    score = Score(mean=recall, low=recall - 0.01, high=recall + 0.01)
    return ModelScores(users={"all": 100}, metrics={"all": {"recall@20": score}})


def _offline(candidate: float, champion: float | None) -> OfflineEvaluation:
    return OfflineEvaluation(
        split={}, ks=(20,), candidate=_scores(candidate),
        champion=None if champion is None else _scores(champion),
        champion_version=None if champion is None else "3", champion_trained_until=None,
        champion_saw_test_period=None, difference=None, p_value=None,
    )  # fmt: skip


def _ope(ci_low: float, logged: dict[str, float]) -> OffPolicyEvaluation:
    estimate = Estimate(
        estimator="snips", value=ci_low + 0.02, ci_low=ci_low, ci_high=0.2, ess=90.0
    )
    return OffPolicyEvaluation(
        evaluated=True, reason="ok", requests=500, rows=1500, logged_ctr=0.05,
        logged_by_version=logged, estimates=(estimate,), recommended="snips", overlap="good",
    )  # fmt: skip


def _data(passed: bool) -> DataReport:
    check = Check(name="volume", passed=passed, value=0.1 if passed else 0.9, threshold=0.5,
                  message="1,000 positive events, last run 900")  # fmt: skip
    return DataReport(checks=(check,), baseline=True)


SMOKE = SmokeTest(passed=True, version="4", items=10, strategy="personalized", seconds=0.1,
                  message="loaded and answered user 'u0' with 10 items")  # fmt: skip


def _judge(evidence: Evidence, config: GateConfig | None = None):
    return evaluate_gate(config or GateConfig(), evidence, "4", "4")


def test_a_good_model_passes_every_default_rule() -> None:
    evidence = Evidence(
        "news", _offline(0.100, 0.101), _data(True), _ope(0.06, {"news:3": 0.05}), SMOKE
    )
    result = _judge(evidence)
    assert result.passed and not result.failed()
    assert [o.status for o in result.outcomes] == ["passed"] * 4
    offline = result.outcomes[0]
    assert offline.rule == "offline:recall@20:all" and offline.value == 0.1
    assert offline.threshold == pytest.approx(0.101 * 0.98)
    assert "champion" in offline.message and result.summary().startswith("passed (4 rules")


def test_each_failed_rule_fails_the_gate_with_its_reason() -> None:
    broken = SmokeTest(passed=False, version="4", items=0, strategy=None, seconds=0.0,
                       message="ModelLoadError: weights.safetensors: sha256 mismatch")  # fmt: skip
    evidence = Evidence(
        "news", _offline(0.090, 0.100), _data(False), _ope(0.04, {"news:3": 0.05}), broken
    )
    result = _judge(evidence)
    assert not result.passed
    assert [o.status for o in result.outcomes] == ["failed"] * 4
    reasons = result.summary()
    assert "0.0900 < 0.0980" in reasons and "lower bound 0.0400" in reasons
    assert "volume: 1,000 positive events" in reasons and "sha256 mismatch" in reasons


def test_missing_evidence_is_skipped_or_failed_as_declared() -> None:
    first = Evidence(
        "news", _offline(0.1, None), DataReport(checks=(), baseline=False), None, SMOKE
    )
    result = _judge(first)
    assert result.passed
    assert [o.status for o in result.outcomes] == ["skipped", "skipped", "passed", "passed"]
    assert "no champion" in result.outcomes[0].message
    assert "no exposure log" in result.outcomes[1].message
    strict = GateConfig(rules=(
        OfflineRule(min_value=0.2), OPERule(on_missing="fail"), DataChecksRule(), SmokeTestRule()
    ))  # fmt: skip
    refused = _judge(first, strict)
    assert [o.status for o in refused.outcomes] == ["failed", "failed", "passed", "passed"]
    assert "0.1000 < min_value 0.2000" in refused.outcomes[0].message
    # The champion did not serve the logged requests: no on-policy CTR to compare with.
    absent = Evidence("news", _offline(0.1, 0.1), _data(True), _ope(0.06, {"news:1": 0.05}), SMOKE)
    outcome = _judge(absent, strict).outcomes[1]
    assert outcome.status == "failed" and "news:3 served none" in outcome.message


def test_gate_rules_are_validated_against_the_config() -> None:
    with pytest.raises(ValidationError, match="recall@K, ndcg@K"):
        OfflineRule(metric="auc")
    with pytest.raises(ValidationError, match="each rule once"):
        GateConfig(rules=(DataChecksRule(), DataChecksRule()))
    with pytest.raises(
        ValidationError, match=r"needs its k in evaluate.ks \(evaluate.ks is \[10\]\)"
    ):
        GatedTrainingConfig.model_validate({"evaluate": {"ks": [10]}})
    config = GatedTrainingConfig.model_validate(
        {"gate": {"rules": [{"kind": "offline", "metric": "ndcg@10", "max_relative_drop": 0.1}]}}
    )
    assert config.gate.rules[0].name == "offline:ndcg@10:all" and config.gate.smoke_k() is None


def test_the_smoke_test_loads_the_version_and_answers(
    tmp_path: Path, trained_artifact: Path
) -> None:
    shutil.copytree(trained_artifact, tmp_path / "news" / "1")
    good = smoke_test(str(tmp_path), "news", "1", k=5)
    assert good.passed and good.items == 5 and good.strategy == "personalized"
    shutil.copytree(trained_artifact, tmp_path / "news" / "2")
    (tmp_path / "news" / "2" / "weights.safetensors").write_bytes(b"broken")
    bad = smoke_test(str(tmp_path), "news", "2")
    assert not bad.passed and "ModelLoadError" in bad.message and "weights" in bad.message
    assert not smoke_test(str(tmp_path), "news", "9").passed


def test_poor_overlap_is_missing_evidence_not_a_missing_estimator() -> None:
    poor = OffPolicyEvaluation(
        evaluated=True, reason="Poor overlap: ESS 3.1 of 500 (0.62%).", requests=500, rows=1500,
        logged_ctr=0.05, logged_by_version={"news:3": 0.05}, estimates=_ope(0.06, {}).estimates,
        recommended=None, overlap="poor",
    )  # fmt: skip
    evidence = Evidence("news", _offline(0.1, 0.1), _data(True), poor, SMOKE)
    skipped = _judge(evidence).outcomes[1]
    assert skipped.status == "skipped"
    assert (
        skipped.message
        == "the OPE report recommends no estimator: Poor overlap: ESS 3.1 of 500 (0.62%)."
    )
    strict = GateConfig(rules=(OPERule(on_missing="fail"),))
    assert _judge(evidence, strict).outcomes[0].status == "failed"
    # Without a champion there is nothing to compare with, whatever the overlap.
    first = Evidence("news", _offline(0.1, None), _data(True), poor, SMOKE)
    assert "no champion" in _judge(first).outcomes[1].message


def test_a_log_that_covers_little_of_the_model_s_slates_is_no_evidence() -> None:
    # A greedy champion's log holds what it showed; a model that would show other
    # items is re-ranking them in the estimates, which say nothing about it.
    narrow = _ope(0.06, {"news:3": 0.05}).model_copy(update={"support": 0.2})
    evidence = Evidence("news", _offline(0.1, 0.1), _data(True), narrow, SMOKE)
    outcome = _judge(evidence).outcomes[1]
    assert outcome.status == "skipped"
    assert "hold 20% of the slates this model would show (min_support 50%)" in outcome.message
    strict = GateConfig(rules=(OPERule(on_missing="fail"),))
    assert _judge(evidence, strict).outcomes[0].status == "failed"
    covered = narrow.model_copy(update={"support": 0.8})
    covered_evidence = Evidence("news", _offline(0.1, 0.1), _data(True), covered, SMOKE)
    assert _judge(covered_evidence).outcomes[1].status == "passed"
    lenient = GateConfig(rules=(OPERule(min_support=0.1),))
    assert _judge(evidence, lenient).outcomes[0].status == "passed"


def test_a_model_trained_on_stale_data_fails_the_freshness_rule() -> None:
    day = 86_400
    config = GateConfig(rules=(FreshnessRule(max_lag_s=2 * day),))
    fresh = _offline(0.1, 0.1).model_copy(update={"split": {"train_end": 0, "data_end": day}})
    stale = fresh.model_copy(update={"split": {"train_end": 0, "data_end": 9 * day}})
    assert _judge(Evidence("news", fresh, _data(True), None, SMOKE), config).passed
    refused = _judge(Evidence("news", stale, _data(True), None, SMOKE), config)
    assert not refused.passed
    assert refused.outcomes[0].message == (
        "the training data ends 9.00 days before the newest event (> 2.00 days)"
    )
    unknown = _judge(Evidence("news", _offline(0.1, 0.1), _data(True), None, SMOKE), config)
    assert unknown.outcomes[0].status == "skipped"
    with pytest.raises(ValueError):
        FreshnessRule(max_lag_s=0)
