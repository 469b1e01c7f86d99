"""The SRM χ² test against scipy.stats.chisquare, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recops.experiments.stats import sample_ratio_test

TOL = {"rel": 1e-9, "abs": 1e-15}


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ([5050, 4950], [1, 1]),
        ([5200, 4800], [1, 1]),
        ([2600, 7400], [0.25, 0.75]),
        ([1000, 2150, 1000], [1, 2, 1]),
        ([333, 350, 317, 401], [1, 1, 1, 1.2]),
    ],
)
def test_equals_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    names = [f"v{i}" for i in range(len(counts))]
    ours = sample_ratio_test(
        dict(zip(names, counts, strict=True)), dict(zip(names, weights, strict=True))
    )
    w = np.asarray(weights, dtype=float)
    ref = stats.chisquare(counts, f_exp=np.sum(counts) * w / w.sum())
    assert ours.statistic == pytest.approx(ref.statistic, **TOL)
    assert ours.p_value == pytest.approx(ref.pvalue, **TOL)
    assert ours.dof == len(counts) - 1
    assert ours.mismatch == (ref.pvalue < 0.001)


def test_flags_a_broken_split_at_p_below_0_001() -> None:
    assert sample_ratio_test({"control": 5200, "b": 4800}).mismatch
    assert not sample_ratio_test({"control": 5050, "b": 4950}).mismatch
    # A 2% imbalance is noise at 1,000 units and a broken split at 100,000.
    assert not sample_ratio_test({"control": 510, "b": 490}).mismatch
    assert sample_ratio_test({"control": 51_000, "b": 49_000}).mismatch


def test_a_configured_variant_without_units_counts_as_zero() -> None:
    result = sample_ratio_test({"control": 1000}, {"control": 1, "b": 1})
    assert result.counts == {"control": 1000, "b": 0}
    assert result.mismatch


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"no weight for variant\(s\) \['c'\]"):
        sample_ratio_test({"a": 10, "c": 3}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="`weights` must be positive"):
        sample_ratio_test({"a": 10, "b": 3}, {"a": 1, "b": 0})
    with pytest.raises(ValueError, match="`threshold` must be a number in"):
        sample_ratio_test({"a": 10, "b": 3}, threshold=1.5)
    with pytest.raises(ValueError, match="at least two variants"):
        sample_ratio_test({"a": 10})
