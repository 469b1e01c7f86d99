"""The FAISS index: exact and approximate kinds, and filters that keep ``k``."""

from __future__ import annotations

import numpy as np
import pytest

from recops.serving.index import (
    NPROBE_LADDER,
    IndexParams,
    VectorIndex,
    choose_index_kind,
    contains,
    default_nlist,
)


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(1)
    return _unit(np.random.default_rng(0), 3000)


@pytest.fixture(scope="module")
def indexes(vectors: np.ndarray) -> dict[str, VectorIndex]:
    """One index of each kind, built once for the module."""
    return {k: VectorIndex(vectors, IndexParams(kind=k)) for k in ("exact", "ivf", "hnsw")}


def _exact_top(vectors: np.ndarray, query: np.ndarray, k: int, mask=None) -> np.ndarray:
    sims = vectors @ query
    if mask is not None:
        sims = np.where(mask, sims, -np.inf)
    return np.argsort(-sims, kind="stable")[:k]


def test_choose_kind_by_size() -> None:
    params = IndexParams(exact_max_items=100, ann_kind="hnsw")
    assert choose_index_kind(100, params) == "exact"
    assert choose_index_kind(101, params) == "hnsw"
    assert choose_index_kind(10, IndexParams(kind="ivf")) == "ivf"


@pytest.mark.parametrize(
    ("n_items", "nlist"),
    [(1, 1), (1_000, 25), (10_000, 256), (65_536, 1680), (100_000, 2048), (1_000_000, 2048)],
)
def test_default_nlist_is_eight_square_roots_capped_and_never_starves_a_cell(
    n_items: int, nlist: int
) -> None:
    assert default_nlist(n_items) == nlist
    assert nlist == 1 or n_items // nlist >= 39  # FAISS warns below 39 training points per cell


def test_default_nlist_is_what_an_ivf_index_builds(vectors: np.ndarray) -> None:
    index = VectorIndex(vectors, IndexParams(kind="ivf"))
    assert index._index.nlist == default_nlist(len(vectors))


def test_exact_matches_numpy(vectors: np.ndarray) -> None:
    index = VectorIndex(vectors, IndexParams(kind="exact"))
    query = vectors[:3]
    ids, sims = index.search(query, 10)
    for row in range(3):
        np.testing.assert_array_equal(ids[row], _exact_top(vectors, query[row], 10))
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall(vectors: np.ndarray, indexes: dict, kind: str) -> None:
    index = indexes[kind]
    queries = _unit(np.random.default_rng(1), 20)
    ids, _ = index.search(queries, 20)
    recall = np.mean(
        [len(set(ids[r]) & set(_exact_top(vectors, queries[r], 20))) / 20 for r in range(20)]
    )
    assert recall >= 0.8, f"{kind} recall@20 {recall:.2f}"


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
@pytest.mark.parametrize("share", [0.5, 0.02, 0.002])
def test_filters_still_return_k(
    vectors: np.ndarray, indexes: dict, kind: str, share: float
) -> None:
    rng = np.random.default_rng(2)
    mask = rng.random(len(vectors)) < share
    mask[:20] = True  # at least 20 eligible items
    index = indexes[kind]
    query = _unit(rng, 1)
    ids, sims = index.search(query, 20, eligible=mask)
    assert (ids >= 0).all(), "a filter returned fewer than k with enough eligible items"
    assert mask[ids[0]].all()
    assert np.all(np.diff(sims[0]) <= 1e-6), "results must be best first"
    if kind == "exact" or share < 0.05:  # exact path: identical to numpy
        np.testing.assert_array_equal(ids[0], _exact_top(vectors, query[0], 20, mask))


def test_exclusions_and_padding(vectors: np.ndarray, indexes: dict) -> None:
    index = indexes["exact"]
    query = vectors[5:6]
    ids, _ = index.search(query, 5, exclude=np.array([5]))
    assert 5 not in ids[0]
    mask = np.zeros(len(vectors), dtype=bool)
    mask[[1, 2, 3]] = True
    ids, sims = index.search(query, 5, eligible=mask)
    assert sorted(ids[0][:3]) == [1, 2, 3]
    assert (ids[0][3:] == -1).all() and np.isneginf(sims[0][3:]).all()
    ids, _ = index.search(query, 5, eligible=np.zeros(len(vectors), dtype=bool))
    assert (ids == -1).all()


def test_bad_input_is_explained(vectors: np.ndarray) -> None:
    with pytest.raises(ValueError, match="non-empty 2-d"):
        VectorIndex(np.zeros((0, 4)))
    index = VectorIndex(vectors, IndexParams(kind="exact"))
    with pytest.raises(ValueError, match="16 columns"):
        index.search(np.zeros((1, 3), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="boolean mask"):
        index.search(vectors[:1], 5, eligible=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="positive int"):
        index.search(vectors[:1], 0)


def test_contains_matches_isin() -> None:
    rng = np.random.default_rng(3)
    values = np.unique(rng.integers(0, 50, 20))
    x = rng.integers(0, 60, (3, 40))
    np.testing.assert_array_equal(contains(values, x), np.isin(x, values))
    assert not contains(np.array([], dtype=np.int64), x).any()


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_single_query_candidates_equal_the_batch_search(
    vectors: np.ndarray, indexes: dict, kind: str
) -> None:
    index = indexes[kind]
    rng = np.random.default_rng(3)
    exclude = np.sort(rng.choice(len(vectors), 40, replace=False))
    mask = rng.random(len(vectors)) < 0.3
    for query in _unit(rng, 5):
        for eligible, excluded in ((None, None), (None, exclude), (mask, exclude)):
            want = index.search(query[None, :], 20, eligible=eligible, exclude=excluded)[0][0]
            got = index.candidates(query, 20, eligible=eligible, exclude=excluded)
            np.testing.assert_array_equal(got, want[want >= 0])
            assert not set(got) & set(exclude if excluded is not None else [])
    # More than the catalog: every item once, best first, never padded.
    everything = indexes["exact"].candidates(vectors[0], len(vectors) + 5)
    assert sorted(everything) == list(range(len(vectors)))


def _clustered(rng: np.random.Generator, n: int, n_clusters: int, spread: float) -> np.ndarray:
    centres = _unit(rng, n_clusters)
    x = centres[rng.integers(n_clusters, size=n)] + spread * rng.normal(size=(n, 16))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Share of each query's exact top-10 among the index's top-50 (the tuning's measure)."""
    found = index.search(queries, 50)[0]
    hits = [
        len(set(_exact_top(vectors, q, 10)) & set(f)) / 10
        for q, f in zip(queries, found, strict=True)
    ]
    return float(np.mean(hits))


@pytest.mark.parametrize("target", [0.9, 0.999])
def test_tune_nprobe_picks_the_fewest_cells_that_reach_the_target(target: float) -> None:
    rng = np.random.default_rng(3)
    vectors = _clustered(rng, 4000, 40, 0.5)
    queries = _clustered(np.random.default_rng(4), 300, 40, 0.5)
    index = VectorIndex(vectors, IndexParams(kind="ivf", ivf_target_recall=target))
    assert index.nprobe == 48 and index.tuning is None  # untuned until asked
    tuning = index.tune_nprobe(queries[:200])
    assert tuning is not None and tuning.met and tuning.nprobe == index.nprobe
    assert (tuning.k, tuning.fetch, tuning.n_queries) == (10, 50, 200)
    # What it measured is what the index now does, on the sample...
    assert tuning.recall == pytest.approx(_recall(index, vectors, queries[:200]))
    assert tuning.recall >= target
    # ... and one step down the ladder would not have reached the target.
    ladder = [n for n in NPROBE_LADDER if n < tuning.nprobe]
    if ladder:
        index._index.nprobe = ladder[-1]
        assert _recall(index, vectors, queries[:200]) < target
        index._index.nprobe = tuning.nprobe
    # Held-out users of the same distribution get about the same recall.
    assert _recall(index, vectors, queries[200:]) >= target - 0.05


def test_tune_nprobe_tightens_with_the_target() -> None:
    rng = np.random.default_rng(5)
    vectors = _clustered(rng, 4000, 40, 0.5)
    queries = _clustered(rng, 200, 40, 0.5)
    loose = VectorIndex(vectors, IndexParams(kind="ivf", ivf_target_recall=0.8))
    tight = VectorIndex(vectors, IndexParams(kind="ivf", ivf_target_recall=0.999))
    assert loose.tune_nprobe(queries).nprobe < tight.tune_nprobe(queries).nprobe  # type: ignore[union-attr]


def test_tune_nprobe_unreachable_target_keeps_every_cell() -> None:
    rng = np.random.default_rng(6)
    vectors = _unit(rng, 2000)
    index = VectorIndex(vectors, IndexParams(kind="ivf", ivf_target_recall=1.0, ivf_tune_fetch=10))
    # fetch 10 for a top-10 over random vectors: reachable only by scanning every cell.
    tuning = index.tune_nprobe(_unit(rng, 50))
    assert tuning is not None
    assert tuning.nprobe == index._index.nlist or tuning.met
    assert "nprobe" in tuning.describe()


def test_tune_nprobe_leaves_other_kinds_and_untuned_settings_alone(
    vectors: np.ndarray, indexes: dict
) -> None:
    queries = vectors[:20]
    assert indexes["exact"].tune_nprobe(queries) is None
    assert indexes["hnsw"].tune_nprobe(queries) is None
    assert indexes["exact"].nprobe is None
    fixed = VectorIndex(vectors, IndexParams(kind="ivf", ivf_nprobe=7, ivf_target_recall=None))
    assert fixed.tune_nprobe(queries) is None and fixed.nprobe == 7
    assert fixed.tune_nprobe(np.empty((0, 16), np.float32)) is None
    with pytest.raises(ValueError, match="16 columns"):
        indexes["ivf"].tune_nprobe(np.ones((2, 3), np.float32))


def test_tuned_nprobe_survives_appending_items() -> None:
    rng = np.random.default_rng(7)
    vectors = _clustered(rng, 3000, 30, 0.5)
    index = VectorIndex(vectors, IndexParams(kind="ivf", ivf_target_recall=0.95))
    tuning = index.tune_nprobe(_clustered(rng, 100, 30, 0.5))
    grown = index.appended(np.vstack([vectors, _clustered(rng, 100, 30, 0.5)]))
    assert grown.nprobe == index.nprobe == tuning.nprobe  # type: ignore[union-attr]
    assert grown.tuning == tuning
