"""Reciprocal rank fusion on hand-made rankings."""

from __future__ import annotations

import numpy as np
import pytest

from recops.models.text import RRF_K, reciprocal_rank_fusion


def test_fusion_sums_reciprocal_ranks() -> None:
    lexical = np.array([3, 1, 2])
    tower = np.array([1, 4])
    rows, scores = reciprocal_rank_fusion([lexical, tower], k=10)
    # 1: 1/62 + 1/61 (in both) > 3: 1/61 > 4: 1/62 > 2: 1/63.
    assert rows.tolist() == [1, 3, 4, 2]
    expected = [1 / 62 + 1 / 61, 1 / 61, 1 / 62, 1 / 63]
    np.testing.assert_allclose(scores, expected)
    assert RRF_K == 60


def test_an_item_in_both_lists_beats_the_top_of_one() -> None:
    rows, _ = reciprocal_rank_fusion([np.array([7, 5, 6]), np.array([8, 5, 9])], k=2)
    assert rows.tolist() == [5, 7]


def test_ties_go_to_the_lower_row_and_k_cuts() -> None:
    rows, scores = reciprocal_rank_fusion([np.array([9]), np.array([2])], k=1)
    assert rows.tolist() == [2] and scores.tolist() == pytest.approx([1 / 61])
    rows, _ = reciprocal_rank_fusion([np.array([], dtype=np.int64), np.array([4, 3])], k=5)
    assert rows.tolist() == [4, 3]
    empty, none = reciprocal_rank_fusion([np.array([], dtype=np.int64)], k=3)
    assert empty.dtype == np.int64 and len(empty) == len(none) == 0


def test_k_rrf_flattens_the_first_ranks() -> None:
    # Without an offset, first place in one list beats 2nd and 3rd place in both.
    rankings = [np.array([1, 2]), np.array([3, 4, 2])]
    steep, _ = reciprocal_rank_fusion(rankings, k=1, k_rrf=0)
    flat, _ = reciprocal_rank_fusion(rankings, k=1, k_rrf=60)
    assert steep.tolist() == [1] and flat.tolist() == [2]
