"""The confidence sequence: its duality with the p-value, its width, and validity under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recops.experiments.stats import sequential_test, summarize_mean, welch_test
from recops.experiments.stats.sequential import confidence_sequence_arrays, mixture_rho2
from recops.experiments.stats.timeline import running_tests


def _arms(seed: int, lift: float, n: int = 800) -> tuple:
    rng = np.random.default_rng(seed)
    return summarize_mean(rng.normal(10, 3, n)), summarize_mean(rng.normal(10 + lift, 3, n))


@pytest.mark.parametrize("seed", range(6))
def test_p_below_alpha_exactly_when_zero_is_outside_the_sequence(seed: int) -> None:
    a, b = _arms(seed, lift=0.25 * seed)
    for alpha in (0.05, 0.2):
        seq = sequential_test(a, b, alpha, tuning=1000).absolute
        assert (seq.p_value < alpha) == (not seq.ci_low <= 0 <= seq.ci_high)


def test_the_sequence_is_wider_than_the_fixed_interval_and_narrowest_near_tau() -> None:
    a, b = _arms(0, lift=0.3)
    fixed = welch_test(a, b).absolute
    n = a.n + b.n
    widths = {
        tau: (lambda s: s.ci_high - s.ci_low)(sequential_test(a, b, tuning=tau).absolute)
        for tau in (n / 20, n, 20 * n)
    }
    assert all(w > fixed.ci_high - fixed.ci_low for w in widths.values())
    assert widths[n] < widths[n / 20] and widths[n] < widths[20 * n]


def test_formulas_of_waudby_smith_et_al() -> None:
    alpha, tau, n, est, var = 0.05, 5000.0, 1200, 0.4, 0.01
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tau
    assert mixture_rho2(alpha, tau) == pytest.approx(rho2, rel=1e-15)
    half = math.sqrt(var * n) * math.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    e_value = math.exp(rho2 * (est**2 * n / var) / (2 * (n * rho2 + 1))) / math.sqrt(n * rho2 + 1)
    low, high, p = confidence_sequence_arrays(n, est, var, alpha, tau)
    assert (float(low), float(high)) == pytest.approx((est - half, est + half), rel=1e-12)
    assert float(p) == pytest.approx(min(1.0, 1 / e_value), rel=1e-12)


def test_huge_evidence_gives_p_zero_without_overflow() -> None:
    with np.errstate(all="raise"):
        _, _, p = confidence_sequence_arrays(1e6, 5.0, 1e-6, 0.05, 5000.0)
    assert float(p) == 0.0


def test_peeking_with_the_sequence_keeps_the_false_positive_rate() -> None:
    """A/A experiments read after every 100 units: naive Welch inflates, the sequence does not."""
    rng = np.random.default_rng(11)
    n_sims, n_units = 400, 4000
    y = rng.exponential(1.0, (n_sims, n_units))
    treated = rng.random((n_sims, n_units)) < 0.5
    looks = np.arange(200, n_units + 1, 100)
    tests = running_tests(y, None, treated, looks, alpha=0.05, tuning=n_units)
    naive = np.mean((tests.p_value < 0.05).any(axis=1))
    sequential = np.mean((tests.p_value_sequential < 0.05).any(axis=1))
    assert naive > 0.12
    assert sequential <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n_sims)


def test_tuning_is_validated() -> None:
    a, b = _arms(0, 0.0, n=10)
    with pytest.raises(ValueError, match="`tuning` must be a positive"):
        sequential_test(a, b, tuning=0)
    with pytest.raises(ValueError, match="`tuning` must be a positive finite"):
        sequential_test(a, b, tuning=float("inf"))
