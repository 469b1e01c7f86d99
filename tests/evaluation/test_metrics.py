"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recops.evaluation.metrics import (
    catalog_coverage,
    hit_matrix,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    per_user_metrics,
    recall_at_k,
)

# User 0: targets {b, d}; list a b c d -> hits at ranks 2 and 4.
# User 1: target {x};    list x y z w -> hit at rank 1.
# User 2: targets {q, r, s}; list a b c d -> no hit.
RECOMMENDED = np.array([list("abcd"), list("xyzw"), list("abcd")], dtype=object)
TARGETS = [np.array(["b", "d"], dtype=object), np.array(["x"], dtype=object), np.array(list("qrs"))]


@pytest.fixture
def hits() -> np.ndarray:
    return hit_matrix(RECOMMENDED, TARGETS)


def test_hit_matrix_marks_targets(hits: np.ndarray) -> None:
    expected = np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(hits, expected)


def test_hit_matrix_treats_none_as_empty_slot() -> None:
    recommended = np.array([["a", None]], dtype=object)
    np.testing.assert_array_equal(hit_matrix(recommended, [np.array(["a", "b"])]), [[True, False]])


def test_recall_is_hits_over_number_of_targets(hits: np.ndarray) -> None:
    n = np.array([2, 1, 3])
    np.testing.assert_allclose(recall_at_k(hits, n, 2), [1 / 2, 1.0, 0.0])
    np.testing.assert_allclose(recall_at_k(hits, n, 4), [2 / 2, 1.0, 0.0])


def test_ndcg_by_hand(hits: np.ndarray) -> None:
    n = np.array([2, 1, 3])
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3)
    np.testing.assert_allclose(ndcg_at_k(hits, n, 4), [dcg0 / idcg0, 1.0, 0.0])
    # At k=2 the ideal DCG counts min(k, |T|) = 2 hits for user 0.
    np.testing.assert_allclose(ndcg_at_k(hits, n, 2)[0], (1 / math.log2(3)) / idcg0)


def test_ndcg_ideal_uses_min_of_k_and_targets() -> None:
    hits = np.array([[True, False, False]])
    # One hit at rank 1 out of 5 targets at k=1: ideal DCG is one hit, so NDCG = 1.
    assert ndcg_at_k(hits, np.array([5]), 1)[0] == pytest.approx(1.0)


def test_hit_rate_and_mrr(hits: np.ndarray) -> None:
    n = np.array([2, 1, 3])
    np.testing.assert_allclose(hit_rate_at_k(hits, n, 1), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(hit_rate_at_k(hits, n, 4), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(mrr_at_k(hits, n, 4), [1 / 2, 1.0, 0.0])
    np.testing.assert_allclose(mrr_at_k(hits, n, 1), [0.0, 1.0, 0.0])


def test_catalog_coverage_counts_distinct_items() -> None:
    # Top-2 lists hold a, b, x, y: 4 distinct items out of 10 candidates.
    assert catalog_coverage(RECOMMENDED, 10, 2) == pytest.approx(0.4)
    assert catalog_coverage(np.array([["a", None]], dtype=object), 4, 2) == pytest.approx(0.25)


def test_per_user_metrics_keys(hits: np.ndarray) -> None:
    out = per_user_metrics(hits, np.array([2, 1, 3]), (2, 4))
    assert set(out) == {f"{m}@{k}" for m in ("recall", "ndcg", "hit_rate", "mrr") for k in (2, 4)}


@pytest.mark.parametrize("k", [0, 5, "3"])
def test_bad_k_is_rejected(hits: np.ndarray, k: object) -> None:
    with pytest.raises(ValueError, match="`k`"):
        recall_at_k(hits, np.array([2, 1, 3]), k)  # type: ignore[arg-type]


def test_users_without_targets_are_rejected(hits: np.ndarray) -> None:
    with pytest.raises(ValueError, match="at least one target"):
        ndcg_at_k(hits, np.array([2, 0, 3]), 2)
