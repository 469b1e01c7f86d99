"""Guardrail verdicts and specs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from recops.experiments.stats import Guardrail, judge_guardrail
from recops.experiments.stats.fixed import Lift


def _rel(estimate: float, low: float, high: float) -> Lift:
    return Lift(estimate, low, high, 0.01, 0.5)


LATENCY = Guardrail("latency_ms", "increase", 0.05)
REVENUE = Guardrail("revenue", "decrease", 0.02)


@pytest.mark.parametrize(
    ("guardrail", "lift", "verdict"),
    [
        (LATENCY, _rel(0.01, -0.01, 0.03), "pass"),
        (LATENCY, _rel(0.08, 0.06, 0.10), "fail"),
        (LATENCY, _rel(0.06, 0.01, 0.11), "fail"),
        (LATENCY, _rel(0.06, -0.01, 0.13), "inconclusive"),
        (LATENCY, _rel(0.03, 0.01, 0.07), "inconclusive"),
        (LATENCY, _rel(-0.20, -0.30, -0.10), "pass"),
        (REVENUE, _rel(0.01, -0.01, 0.03), "pass"),
        (REVENUE, _rel(-0.05, -0.07, -0.03), "fail"),
        (REVENUE, _rel(-0.01, -0.04, 0.02), "inconclusive"),
        (LATENCY, _rel(float("nan"), float("nan"), float("nan")), "inconclusive"),
    ],
)
def test_verdicts(guardrail: Guardrail, lift: Lift, verdict: str) -> None:
    result = judge_guardrail(guardrail, "b", lift)
    assert result.verdict == verdict
    assert guardrail.metric in result.reason


def test_harm_is_signed_by_direction() -> None:
    result = judge_guardrail(REVENUE, "b", _rel(-0.05, -0.07, -0.03))
    assert (result.harm, result.harm_ci_low, result.harm_ci_high) == pytest.approx(
        (0.05, 0.03, 0.07)
    )
    assert "failed" in result.reason and "2.00% tolerance" in result.reason


def test_specs() -> None:
    assert Guardrail.from_spec("latency_ms:increase:0.05") == LATENCY
    assert Guardrail.from_spec("errors/requests:increase:0") == Guardrail(
        "errors/requests", "increase", 0.0
    )
    assert (
        Guardrail.from_spec(
            {"metric": "revenue", "direction": "decrease", "max_relative_change": 0.02}
        )
        == REVENUE
    )
    config_like = SimpleNamespace(metric="revenue", direction="decrease", max_relative_change=0.02)
    assert Guardrail.from_spec(config_like) == REVENUE


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("latency_ms:0.05", "METRIC:DIRECTION:MAX_RELATIVE_CHANGE"),
        ("latency_ms:up:0.05", "`direction` must be 'increase' or 'decrease'"),
        ("latency_ms:increase:five", "MAX_RELATIVE_CHANGE must be a number"),
        ("latency_ms:increase:-0.1", "`max_relative_change` must be a number >= 0"),
        ({"metric": "x", "direction": "increase"}, r"lacks \['max_relative_change'\]"),
    ],
)
def test_bad_specs_say_what_to_fix(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Guardrail.from_spec(spec)
