"""recops.experiments.stats against frozen GrowthBook gbstats 0.8.0 numbers, to 1e-9.

The vectors and how they were made: tests/experiments/stats/reference/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recops.experiments.stats import (
    ArmSummary,
    CupedArm,
    cuped,
    sample_ratio_test,
    sequential_test,
    summarize_mean,
    summarize_ratio,
    welch_test,
)
from recops.experiments.stats.fixed import Lift
from recops.experiments.stats.sequential import DEFAULT_TUNING

REFERENCE = json.loads((Path(__file__).parent / "reference" / "gbstats_vectors.json").read_text())
DATA = REFERENCE["data"]
TOL = {"rel": 1e-9, "abs": 1e-12}


def _arms(dataset: str) -> tuple[ArmSummary, ArmSummary]:
    if dataset == "revenue":
        rev = DATA["revenue"]
        return summarize_mean(rev["control"]), summarize_mean(rev["treatment"])
    if dataset == "ratio":
        rat = DATA["ratio"]
        return tuple(  # type: ignore[return-value]
            summarize_ratio(rat[arm]["clicks"], rat[arm]["impressions"])
            for arm in ("control", "treatment")
        )
    cup = DATA["cuped"]
    adj = cuped(
        CupedArm(cup["control"]["sessions"], cup["control"]["pre_sessions"]),
        CupedArm(cup["treatment"]["sessions"], cup["treatment"]["pre_sessions"]),
    )
    return adj.control, adj.treatment


def _kinds(dataset: str) -> tuple[str, ...]:
    # gbstats divides a CUPED lift by the *unadjusted* control mean; recops takes the
    # ratio of the adjusted means (README), so only the absolute CUPED lift is compared.
    return ("absolute",) if dataset == "cuped" else ("absolute", "relative")


CASES = [
    (dataset, kind, alpha)
    for dataset in ("revenue", "ratio", "cuped")
    for kind in _kinds(dataset)
    for alpha in REFERENCE["alphas"]
]


def _check(lift: Lift, ref: dict) -> None:
    assert lift.estimate == pytest.approx(ref["estimate"], **TOL)
    assert [lift.ci_low, lift.ci_high] == pytest.approx(ref["ci"], **TOL)
    assert lift.p_value == pytest.approx(ref["p_value"], **TOL)


@pytest.mark.parametrize(("dataset", "kind", "alpha"), CASES)
def test_fixed_horizon_equals_gbstats(dataset: str, kind: str, alpha: float) -> None:
    ref = REFERENCE[dataset][f"fixed_{kind}_alpha{alpha}"]
    control, treatment = _arms(dataset)
    result = welch_test(control, treatment, alpha)
    _check(getattr(result, kind), ref)
    assert getattr(result, kind).std_error == pytest.approx(ref["std_error"], **TOL)
    assert result.dof == pytest.approx(ref["dof"], **TOL)


@pytest.mark.parametrize("tuning", REFERENCE["tunings"])
@pytest.mark.parametrize(("dataset", "kind", "alpha"), CASES)
def test_sequential_equals_gbstats(dataset: str, kind: str, alpha: float, tuning: float) -> None:
    ref = REFERENCE[dataset][f"sequential_{kind}_alpha{alpha}_tuning{tuning:g}"]
    control, treatment = _arms(dataset)
    _check(getattr(sequential_test(control, treatment, alpha, tuning), kind), ref)


def test_cuped_theta_and_default_tuning_equal_gbstats() -> None:
    cup = DATA["cuped"]
    adj = cuped(
        CupedArm(cup["control"]["sessions"], cup["control"]["pre_sessions"]),
        CupedArm(cup["treatment"]["sessions"], cup["treatment"]["pre_sessions"]),
    )
    assert adj.theta == pytest.approx(REFERENCE["cuped_theta"], **TOL)
    assert REFERENCE["config_defaults"]["sequential_tuning_parameter"] == DEFAULT_TUNING


@pytest.mark.parametrize("case", REFERENCE["srm"], ids=lambda c: str(c["users"]))
def test_srm_equals_gbstats(case: dict) -> None:
    names = [f"v{i}" for i in range(len(case["users"]))]
    result = sample_ratio_test(
        dict(zip(names, case["users"], strict=True)),
        dict(zip(names, case["weights"], strict=True)),
    )
    assert result.p_value == pytest.approx(case["p_value"], **TOL)


def test_the_vectors_exercise_both_sides_of_alpha() -> None:
    """A reference made only of p = 1 (or only of tiny p) would not test the formulas."""
    p = np.array(
        [v["p_value"] for d in ("revenue", "ratio", "cuped") for v in REFERENCE[d].values()]
    )
    assert (p < 0.05).any() and ((p > 0.05) & (p < 1)).any()
