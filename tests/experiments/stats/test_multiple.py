"""Holm and Benjamini–Hochberg against statsmodels' multipletests, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from recops.experiments.stats import benjamini_hochberg, holm


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("ours", "method"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_equals_statsmodels(seed: int, ours: object, method: str) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 15))
    # A mix of strong effects, ties and nulls.
    p = np.concatenate([rng.uniform(0, 0.01, m // 3), rng.uniform(0, 1, m - m // 3)])
    p[: min(2, m)] = p[0]
    rng.shuffle(p)
    expected = multipletests(p, method=method)[1]
    np.testing.assert_allclose(ours(p), expected, rtol=1e-9, atol=1e-15)  # type: ignore[operator]


def test_nan_p_values_stay_nan_and_do_not_count() -> None:
    p = np.array([0.03, np.nan, 0.04])
    np.testing.assert_allclose(holm(p), [0.06, np.nan, 0.06])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, np.nan, 0.04])


def test_p_values_are_validated() -> None:
    with pytest.raises(ValueError, match=r"`p_values` must be in \[0, 1\] \(got 1.5\)"):
        holm([0.2, 1.5])
    with pytest.raises(ValueError, match="`p_values` must be a 1-d array"):
        benjamini_hochberg([[0.1]])
