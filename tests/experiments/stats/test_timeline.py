"""Running tests at every look equal the one-shot tests on the same prefix."""

from __future__ import annotations

import numpy as np
import pytest

from recops.experiments.stats import analyze, timeline
from tests.experiments.stats.units import make_units


@pytest.mark.parametrize("metric", ["clicks/impressions", "latency_ms"])
def test_the_last_look_equals_analyze(metric: str) -> None:
    frame = make_units(2000, lift=0.1, split={"control": 1, "b": 1, "c": 1}, seed=0)
    line = timeline(frame, "control", metric, n_looks=20, alpha=0.1, tuning=3000)
    result = analyze(frame, "control", [metric], alpha=0.1, tuning=3000, use_cuped=False)
    assert line.looks[-1] == 2000 and len(line.looks) == 20
    for variant in ("b", "c"):
        tests = line.tests[variant]
        c = result.comparison(metric, variant)
        assert tests.lift[-1] == pytest.approx(c.fixed.absolute.estimate, rel=1e-9)
        assert tests.ci_low[-1] == pytest.approx(c.fixed.absolute.ci_low, rel=1e-9)
        assert tests.p_value[-1] == pytest.approx(c.fixed.absolute.p_value, rel=1e-9)
        assert tests.cs_high[-1] == pytest.approx(c.sequential.absolute.ci_high, rel=1e-9)
        assert tests.p_value_sequential[-1] == pytest.approx(
            c.sequential.absolute.p_value, rel=1e-9, abs=1e-300
        )
        assert line.cumulative[variant][-1] == pytest.approx(c.treatment.mean, rel=1e-9)


def test_an_intermediate_look_equals_analyze_on_the_prefix() -> None:
    frame = make_units(1500, seed=1).sample(frac=1.0, random_state=1)  # rows out of time order
    line = timeline(frame, "control", "clicks/impressions", n_looks=5)
    k = line.looks[2]
    prefix = frame.sort_values("timestamp", kind="stable").iloc[:k]
    c = analyze(prefix, "control", ["clicks/impressions"], use_cuped=False).comparison(
        "clicks/impressions", "b"
    )
    assert line.tests["b"].lift[2] == pytest.approx(c.fixed.absolute.estimate, rel=1e-9)
    assert line.tests["b"].cs_low[2] == pytest.approx(c.sequential.absolute.ci_low, rel=1e-9)
    assert line.time is not None and np.all(np.diff(line.time) >= 0)
    assert line.cumulative["control"][2] == pytest.approx(c.control.mean, rel=1e-9)


def test_without_timestamps_rows_are_in_arrival_order() -> None:
    frame = make_units(300, seed=2).drop(columns="timestamp")
    line = timeline(frame, "control", "clicks", n_looks=500)
    assert line.time is None
    assert line.looks.tolist() == list(range(1, 301))
    first = frame.clicks.iloc[0]
    assert line.cumulative[frame.variant.iloc[0]][0] == first
