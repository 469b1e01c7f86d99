"""The drift statistics against scipy (KS, χ²) and Evidently's frozen numbers (PSI, KS)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from recops.monitoring.statistics import (
    categorical_psi,
    chi_square_test,
    ks_test,
    numeric_psi,
    psi,
    quantile_cuts,
)
from tests.monitoring.reference.vector_data import (
    CATEGORICAL_CASES,
    NUMERIC_CASES,
    categorical_samples,
    numeric_samples,
)

VECTORS = json.loads((Path(__file__).parent / "reference" / "evidently_vectors.json").read_text())


@pytest.mark.parametrize("name", sorted(NUMERIC_CASES))
def test_ks_equals_scipy_asymptotic(name: str) -> None:
    ref, cur = numeric_samples(name)
    ours = ks_test(ref, cur)
    peer = stats.ks_2samp(ref, cur, method="asymp")
    assert ours.statistic == pytest.approx(peer.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(peer.pvalue, rel=1e-9, abs=1e-300)


def test_ks_small_samples_and_ties_equal_scipy() -> None:
    rng = np.random.default_rng(7)
    ref = rng.integers(0, 5, 40).astype(float)
    cur = rng.integers(1, 6, 25).astype(float)
    ours = ks_test(ref, cur)
    peer = stats.ks_2samp(ref, cur, method="asymp")
    assert ours.statistic == pytest.approx(peer.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(peer.pvalue, rel=1e-9)
    assert (ours.n_reference, ours.n_current) == (40, 25)


@pytest.mark.parametrize("name", sorted(CATEGORICAL_CASES))
def test_chi_square_equals_scipy_contingency(name: str) -> None:
    ref, cur = categorical_samples(name)
    labels = sorted(set(ref) | set(cur))
    table = np.array([[np.sum(ref == k) for k in labels], [np.sum(cur == k) for k in labels]])
    peer = stats.chi2_contingency(table, correction=False)
    ours = chi_square_test(ref, cur)
    assert ours.statistic == pytest.approx(peer.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(peer.pvalue, rel=1e-9, abs=1e-300)
    assert ours.dof == peer.dof


def test_chi_square_one_category_has_no_evidence() -> None:
    result = chi_square_test(["a"] * 10, ["a"] * 5)
    assert (result.statistic, result.p_value, result.dof) == (0.0, 1.0, 0)


@pytest.mark.parametrize("name", sorted(NUMERIC_CASES))
def test_numeric_psi_and_ks_equal_evidently(name: str) -> None:
    frozen = VECTORS["numeric"][name]
    ref, cur = numeric_samples(name)
    assert [ref.sum(), cur.sum()] == pytest.approx(frozen["checksum"], rel=1e-12)
    # Evidently's Sturges bins, as inner cut points with open outer bins.
    ours = numeric_psi(ref, cur, bins=frozen["psi_edges"][1:-1])
    assert ours.value == pytest.approx(frozen["psi"], rel=1e-9)
    # Over 10,000 values Evidently's KS (scipy's "auto") is the asymptotic one.
    assert ks_test(ref, cur).p_value == pytest.approx(frozen["ks_p_value"], rel=1e-9)


@pytest.mark.parametrize("name", sorted(CATEGORICAL_CASES))
def test_categorical_psi_equals_evidently(name: str) -> None:
    frozen = VECTORS["categorical"][name]
    ref, cur = categorical_samples(name)
    counted = [dict(zip(*np.unique(s, return_counts=True), strict=True)) for s in (ref, cur)]
    assert [{k: int(v) for k, v in c.items()} for c in counted] == frozen["counts"]
    assert categorical_psi(ref, cur).value == pytest.approx(frozen["psi"], rel=1e-9)


def test_psi_by_hand() -> None:
    # r = (0.5, 0.5, 0), c = (0.25, 0.5, 0.25); the empty bin's share becomes 1e-4.
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.25 - 1e-4) * np.log(0.25 / 1e-4)
    assert psi([2, 2, 0], [1, 2, 1]) == pytest.approx(expected, rel=1e-12)
    assert psi([1, 1], [3, 3]) == 0.0


def test_psi_is_symmetric_kl() -> None:
    r, c = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    kl = stats.entropy(c, r) + stats.entropy(r, c)
    assert psi(r, c) == pytest.approx(kl, rel=1e-12)


def test_quantile_bins_frame_the_reference() -> None:
    ref = np.arange(100, dtype=float)
    cuts = quantile_cuts(ref, 4)
    assert cuts[0] == 0.0 and cuts[-1] == np.nextafter(99.0, np.inf)
    result = numeric_psi(ref, np.full(10, 500.0), bins=4)
    # Everything current lies above the reference: one bin new to it.
    assert result.current_shares[-1] == 1.0 and result.reference_shares[-1] == 0.0
    assert result.value > 1.0
    same = numeric_psi(ref, ref, bins=4)
    assert same.value == 0.0 and sum(same.reference_shares) == pytest.approx(1.0)


def test_constant_reference_still_sees_a_shift() -> None:
    result = numeric_psi(np.zeros(500), np.r_[np.zeros(250), np.ones(250)])
    assert result.value > 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: psi([1, 2], [1, 2, 3]), "`current_counts` must have one count per bin"),
        (lambda: psi([0, 0], [1, 1]), "`reference_counts` must be non-negative counts"),
        (lambda: psi([1, 1], [1, 1], epsilon=0.5), "`epsilon` must be a number in"),
        (lambda: numeric_psi([], [1.0]), "must not be empty"),
        (lambda: numeric_psi([1.0, np.nan], [1.0]), "`reference` must be finite"),
        (lambda: numeric_psi([1.0], [1.0], bins=1), "`n_bins` must be an int in 2..1000"),
        (lambda: numeric_psi([1.0], [1.0], bins=[2.0, 1.0]), "strictly increasing"),
        (lambda: categorical_psi(["a", None], ["a"]), "`reference` must not hold missing"),
        (lambda: ks_test([1.0], []), "must not be empty"),
        (lambda: chi_square_test([[1]], ["a"]), "`reference` must be a 1-d array"),
    ],
)
def test_bad_input_names_the_argument(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
