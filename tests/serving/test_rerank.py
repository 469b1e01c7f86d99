"""The compiled re-rank against a plain-Python reference on random cases."""

from __future__ import annotations

import numpy as np
import pytest

from recops.serving.rerank import best_rows


def _reference(
    rows, sims, scale, k, *, prior, top, top_sims, top_prior, excluded, eligible, **term
):
    """``best_rows`` in plain Python (the same arguments): score every candidate, keep
    each allowed row's best, sort by (-score, row)."""
    f32 = np.float32
    best: dict[int, np.float32] = {}
    extra = dict(zip(term["bonus_rows"].tolist(), term["bonus"], strict=True))
    # The term's n_extra best rows (ties to the lower row) join as candidates, their
    # inner product from the item vectors (exact here: the test's vectors are
    # multiples of 0.5, so every float32 sum order agrees).
    by_bonus = sorted(extra, key=lambda r: (-extra[r], r))[: term["n_extra"]]
    joined = np.array(by_bonus, dtype=np.int64)
    rows = np.concatenate([rows, joined])
    if len(joined):
        vectors, query = term["vectors"], term["query"]
        sims = np.concatenate([sims, (vectors[joined] @ query).astype(np.float32)])
    candidates = [
        (r, f32(s) * f32(scale) + (prior[r] if len(prior) else f32(0)))
        for r, s in zip(rows, sims, strict=True)
    ]
    candidates += [
        (r, f32(s) * f32(scale) + f32(p)) for r, s, p in zip(top, top_sims, top_prior, strict=True)
    ]
    candidates = [(r, f32(score + extra.get(int(r), f32(0)))) for r, score in candidates]
    for row, score in candidates:
        row = int(row)
        if row < 0 or row in set(excluded.tolist()) or (len(eligible) and not eligible[row]):
            continue
        if row not in best or score > best[row]:
            best[row] = f32(score)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [r for r, _ in ranked], [float(s) for _, s in ranked]


@pytest.mark.parametrize("n_extra", [0, 7, 100])
@pytest.mark.parametrize("k", [1, 5, 10, 32, 33, 100, 400])
@pytest.mark.parametrize("seed", range(6))
def test_best_rows_equals_the_reference(k: int, seed: int, n_extra: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = 500
    rows = rng.choice(n_items, 120, replace=False).astype(np.int64)
    rows[-3:] = -1  # an approximate index pads short results with -1
    # Coarse similarities force ties, which go to the lower row.
    sims = np.round(rng.normal(size=len(rows)), 1).astype(np.float32)
    prior = rng.normal(size=n_items).astype(np.float32) if seed % 3 else np.empty(0, np.float32)
    top = rng.choice(n_items, 50, replace=False).astype(np.int64)
    top[:10] = rows[:10]  # the prior proposes some of the index's rows again
    top_sims = np.round(rng.normal(size=len(top)), 1).astype(np.float32)
    top_prior = (prior[top] if len(prior) else np.zeros(len(top))).astype(np.float32)
    excluded = rng.choice(n_items, 40, replace=False).astype(np.int64)
    eligible = rng.random(n_items) < 0.7 if seed % 2 else np.empty(0, np.bool_)
    # An item-item term on some rows (sorted): on the index's and the prior's rows and
    # on rows of its own, some excluded or ineligible; its best rows join as candidates.
    bonus_rows = np.unique(
        np.concatenate([rows[5:20], top[30:42], rng.choice(n_items, 20, replace=False)])
    )
    bonus_rows = bonus_rows[bonus_rows >= 0] if seed >= 2 else np.empty(0, np.int64)
    # Coarse values: ties at the cut of the n_extra best go to the lower rows.
    bonus = np.round(rng.normal(size=len(bonus_rows)), 1).astype(np.float32)
    vectors = (np.round(rng.normal(size=(n_items, 8)) * 2) / 2).astype(np.float32)
    query = (np.round(rng.normal(size=8) * 2) / 2).astype(np.float32)
    args = dict(
        prior=prior,
        top=top,
        top_sims=top_sims,
        top_prior=top_prior,
        excluded=excluded,
        eligible=eligible,
        bonus_rows=bonus_rows,
        bonus=bonus,
        n_extra=n_extra,
        vectors=vectors,
        query=query,
    )
    got = best_rows(rows, sims, 20.0, k, **args)
    want = _reference(rows, sims, 20.0, k, **args)
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=0)
    assert len(set(got[0])) == len(got[0]) == min(k, len(want[0]))


def test_best_rows_without_prior_or_filters_ranks_by_scaled_similarity() -> None:
    rows = np.array([7, 3, 9, 1], dtype=np.int64)
    sims = np.array([0.5, 0.9, 0.5, -0.1], dtype=np.float32)
    picked, scores = best_rows(rows, sims, 10.0, 3)
    assert picked == [3, 7, 9]  # 7 and 9 tie: the lower row first
    assert scores == pytest.approx([9.0, 5.0, 5.0])
    assert best_rows(rows, sims, 10.0, 3, excluded=np.array([3, 7]))[0] == [9, 1]
    assert best_rows(rows[:0], sims[:0], 10.0, 3) == ([], [])
