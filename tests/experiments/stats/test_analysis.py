"""``analyze`` end to end: the numbers it reports and the recommendation it makes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from recops.experiments.stats import (
    Guardrail,
    analyze,
    sample_ratio_test,
    sequential_test,
    summarize_ratio,
    welch_test,
)
from tests.experiments.stats.units import make_units

TOL = {"rel": 1e-9, "abs": 1e-12}


def test_reports_every_test_and_they_equal_the_building_blocks() -> None:
    frame = make_units(3000, lift=0.1, seed=1)
    result = analyze(frame, "control", ["clicks/impressions", "clicks"], alpha=0.1, tuning=2000)
    c, b = frame[frame.variant == "control"], frame[frame.variant == "b"]
    ratio = result.comparison("clicks/impressions", "b")
    control = summarize_ratio(c.clicks, c.impressions)
    treatment = summarize_ratio(b.clicks, b.impressions)
    assert ratio.fixed == welch_test(control, treatment, 0.1)
    assert ratio.sequential == sequential_test(control, treatment, 0.1, 2000)
    clicks = result.comparison("clicks", "b")
    ref = stats.ttest_ind(b.clicks, c.clicks, equal_var=False)
    assert clicks.fixed.absolute.p_value == pytest.approx(ref.pvalue, **TOL)
    assert result.srm == sample_ratio_test({"control": len(c), "b": len(b)})
    assert ratio.cuped is not None and ratio.cuped.variance_reduction > 0
    assert clicks.cuped is not None  # the mean metric `clicks` reads pre_clicks


def test_adjusted_p_values_are_holm_and_bh_over_variants_and_metrics() -> None:
    frame = make_units(4000, lift=0.08, split={"control": 1, "b": 1, "c": 1}, seed=2)
    result = analyze(frame, "control", ["clicks/impressions", "clicks"], use_cuped=False)
    family = [c for c in result.comparisons if c.role != "guardrail"]
    assert len(family) == 4
    raw = [c.fixed.absolute.p_value for c in family]
    for c, holm_p, bh_p in zip(
        family,
        multipletests(raw, method="holm")[1],
        multipletests(raw, method="fdr_bh")[1],
        strict=True,
    ):
        assert c.adjusted is not None and not c.adjusted.uses_cuped
        assert c.adjusted.fixed_holm == pytest.approx(holm_p, **TOL)
        assert c.adjusted.fixed_bh == pytest.approx(bh_p, **TOL)


def test_cuped_p_values_are_the_ones_adjusted_when_a_pre_column_exists() -> None:
    result = analyze(make_units(3000, seed=3), "control", ["clicks/impressions"])
    c = result.comparison("clicks/impressions", "b")
    assert c.cuped is not None and c.adjusted is not None and c.adjusted.uses_cuped
    assert c.adjusted.fixed_holm == pytest.approx(c.cuped.fixed.absolute.p_value)


def test_a_big_lift_ships() -> None:
    result = analyze(
        make_units(6000, lift=0.3, seed=4),
        "control",
        ["clicks/impressions"],
        guardrails=["latency_ms:increase:0.05"],
    )
    rec = result.recommendation
    assert (rec.decision, rec.variant) == ("ship", "b"), rec.reasons
    assert "significantly better" in rec.reasons[0]
    assert result.guardrails[0].verdict == "pass"


def test_a_failed_guardrail_blocks_shipping() -> None:
    result = analyze(
        make_units(6000, lift=0.3, latency_lift=0.2, seed=5),
        "control",
        ["clicks/impressions"],
        guardrails=[Guardrail("latency_ms", "increase", 0.05)],
    )
    assert result.recommendation.decision == "dont_ship"
    assert "guardrail latency_ms failed" in result.recommendation.reasons[0]


def test_srm_overrides_everything() -> None:
    result = analyze(
        make_units(20_000, lift=0.3, split={"control": 0.52, "b": 0.48}, seed=6),
        "control",
        ["clicks/impressions"],
    )
    assert result.srm.mismatch
    assert result.recommendation.decision == "dont_ship"
    assert result.recommendation.reasons[0].startswith(
        "SRM: assignment is broken, do not read the result"
    )
    # With the configured weights matching the true split there is no mismatch.
    fine = analyze(
        make_units(20_000, split={"control": 0.52, "b": 0.48}, seed=6),
        "control",
        ["clicks"],
        weights={"control": 52, "b": 48},
    )
    assert not fine.srm.mismatch


def test_no_effect_keeps_running_sequentially_and_does_not_ship_at_the_horizon() -> None:
    frame = make_units(3000, seed=7)
    sequential = analyze(frame, "control", ["clicks/impressions"])
    assert sequential.recommendation.decision == "keep_running"
    assert "no significant effect yet" in sequential.recommendation.reasons[0]
    fixed = analyze(frame, "control", ["clicks/impressions"], decision="fixed")
    assert fixed.recommendation.decision == "dont_ship"
    assert "planned horizon" in fixed.recommendation.reasons[0]


def test_a_significant_loss_does_not_ship_and_goal_flips_it() -> None:
    frame = make_units(6000, lift=-0.3, seed=8)
    assert analyze(frame, "control", ["clicks/impressions"]).recommendation.decision == "dont_ship"
    flipped = analyze(frame, "control", ["clicks/impressions"], goal="decrease")
    assert flipped.recommendation.decision == "ship"


def test_too_few_units_keep_running() -> None:
    result = analyze(make_units(150, lift=2.0, seed=9), "control", ["clicks/impressions"])
    assert result.recommendation.decision == "keep_running"
    assert result.recommendation.reasons[0].startswith("not enough data")


def test_an_inconclusive_guardrail_keeps_a_winner_running() -> None:
    result = analyze(
        make_units(6000, lift=0.3, latency_lift=0.03, seed=10),
        "control",
        ["clicks/impressions"],
        guardrails=["latency_ms:increase:0.05"],
    )
    assert result.guardrails[0].verdict == "inconclusive"
    assert result.recommendation.decision == "keep_running"
    assert "not ruled out yet" in result.recommendation.reasons[0]


def test_to_dict_is_json_with_the_documented_keys() -> None:
    frame = make_units(1000, seed=11).drop(columns=["pre_impressions"])
    frame.loc[frame.variant == "control", "clicks"] = 0
    result = analyze(
        frame, "control", ["clicks/impressions", "clicks"], guardrails=["latency_ms:increase:0.1"]
    )
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(out) == {
        "schema", "control", "treatments", "alpha", "decision_test", "goal", "tuning",
        "primary_metric", "units", "srm", "metrics", "guardrails", "recommendation", "notes",
    }  # fmt: skip
    assert out["schema"] == "recops.experiment_analysis/1"
    assert set(out["srm"]) == {
        "counts", "expected", "statistic", "dof", "p_value", "threshold", "mismatch"
    }  # fmt: skip
    ratio = out["metrics"]["clicks/impressions"]
    assert (ratio["kind"], ratio["role"]) == ("ratio", "primary")
    assert out["metrics"]["latency_ms"]["role"] == "guardrail"
    entry = ratio["variants"]["b"]
    assert set(entry) == {"n", "mean", "std_error", "fixed", "sequential", "cuped", "adjusted_p"}
    assert set(entry["fixed"]) == {"absolute", "relative", "dof"}
    assert set(entry["fixed"]["absolute"]) == {
        "estimate",
        "ci_low",
        "ci_high",
        "std_error",
        "p_value",
    }
    assert set(entry["sequential"]) == {"absolute", "relative", "n_total", "tuning"}
    assert entry["cuped"] is None  # pre_impressions was dropped
    assert out["notes"] == ["clicks/impressions: no CUPED (needs column(s) ['pre_impressions'])"]
    assert set(entry["adjusted_p"]) == {"fixed", "sequential", "uses_cuped"}
    # The control's CTR is 0: the relative lift is undefined and becomes null, not NaN.
    assert entry["fixed"]["relative"]["estimate"] is None
    assert out["metrics"]["clicks"]["variants"]["b"]["cuped"]["variance_reduction"] >= 0
    assert set(out["recommendation"]) == {"decision", "variant", "reasons"}


def test_arguments_are_checked() -> None:
    frame = make_units(200, seed=12)
    with pytest.raises(ValueError, match="`metrics` must name at least one metric"):
        analyze(frame, "control", [])
    with pytest.raises(ValueError, match="`decision` must be 'sequential' or 'fixed'"):
        analyze(frame, "control", ["clicks"], decision="bayes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a metric must be a column name"):
        analyze(frame, "control", ["a/b/c"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['revenue'\]"):
        analyze(frame, "control", ["revenue"])
    with pytest.raises(ValueError, match=r"no weight for variant\(s\) \['b'\]"):
        analyze(frame, "control", ["clicks"], weights={"control": 1, "c": 1})


def test_rows_in_any_order_give_the_same_result() -> None:
    frame = make_units(1000, seed=13)
    shuffled = frame.sample(frac=1.0, random_state=0)
    a = analyze(frame, "control", ["clicks/impressions"]).to_dict()
    b = analyze(shuffled, "control", ["clicks/impressions"]).to_dict()
    pa = a["metrics"]["clicks/impressions"]["variants"]["b"]["fixed"]["absolute"]["p_value"]
    pb = b["metrics"]["clicks/impressions"]["variants"]["b"]["fixed"]["absolute"]["p_value"]
    assert pa == pytest.approx(pb, **TOL)
    assert np.isfinite(pa)
