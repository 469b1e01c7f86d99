"""Bootstrap intervals and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from recops.evaluation.bootstrap import (
    Interval,
    bootstrap_ci,
    intervals_overlap,
    paired_bootstrap,
)


def test_interval_contains_mean_and_is_reproducible() -> None:
    values = np.random.default_rng(1).random(300)
    a = bootstrap_ci(values, n_boot=500, seed=7)
    b = bootstrap_ci(values, n_boot=500, seed=7)
    assert a == b
    assert a.low < a.mean < a.high
    assert a.mean == pytest.approx(values.mean())


def test_interval_width_matches_standard_error() -> None:
    values = np.random.default_rng(2).random(2000)
    ci = bootstrap_ci(values, n_boot=2000, seed=0)
    se = values.std(ddof=1) / np.sqrt(len(values))
    # A 95% normal interval is ±1.96 SE; the percentile bootstrap should agree closely.
    assert (ci.high - ci.low) == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_different_seeds_give_different_intervals() -> None:
    values = np.random.default_rng(3).random(100)
    assert bootstrap_ci(values, seed=0) != bootstrap_ci(values, seed=1)


def test_overlap() -> None:
    assert intervals_overlap(Interval(0.5, 0.4, 0.6), Interval(0.65, 0.55, 0.75))
    assert not intervals_overlap(Interval(0.5, 0.4, 0.6), Interval(0.8, 0.7, 0.9))


def test_paired_bootstrap_detects_a_consistent_gain() -> None:
    rng = np.random.default_rng(4)
    b = rng.random(200)
    a = b + 0.05 + rng.normal(0, 0.01, 200)
    out = paired_bootstrap(a, b, n_boot=500)
    assert out.significant
    assert out.difference.low > 0
    assert out.p_value < 0.01


def test_paired_bootstrap_of_identical_models_is_not_significant() -> None:
    b = np.random.default_rng(5).random(200)
    out = paired_bootstrap(b, b.copy(), n_boot=200)
    assert out.difference.mean == 0.0
    assert not out.significant


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="`level`"):
        bootstrap_ci(np.ones(3), level=1.5)
