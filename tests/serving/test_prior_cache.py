"""The prior cache: one computation per refresh window, a few windows kept, deferred mode."""

from __future__ import annotations

import numpy as np

from recops.serving.prior_cache import PriorCache


class _CountingPrior:
    """The part of a servable model the prior cache uses, counting computations."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def item_prior(self, now: int) -> np.ndarray:
        self.calls.append(now)
        return np.arange(6, dtype=np.float32) * (1 + now % 7)


def test_prior_cache_computes_each_window_once_and_keeps_a_few() -> None:
    model = _CountingPrior()
    vectors = np.eye(6, dtype=np.float32)
    cache = PriorCache(refresh_s=60, top_n=2)
    first = cache.get(model, vectors, 125)  # type: ignore[arg-type]
    assert cache.get(model, vectors, 179) is first  # same window [120, 180)
    assert model.calls == [120]
    np.testing.assert_array_equal(first.top, [5, 4])
    np.testing.assert_array_equal(first.top_vectors, vectors[[5, 4]])
    np.testing.assert_array_equal(first.top_prior, first.prior[[5, 4]])
    assert not cache.cached(180)
    cache.get(model, vectors, 185)  # computed ahead: the next request finds it
    assert cache.cached(180) and cache.cached(239)
    for now in (240, 300, 360):
        cache.get(model, vectors, now)
    assert not cache.cached(120), "the least recently used window is dropped"
    assert model.calls == [120, 180, 240, 300, 360]


def test_a_deferred_cache_answers_with_the_nearest_window_and_notes_the_asked_one() -> None:
    model = _CountingPrior()
    vectors = np.eye(6, dtype=np.float32)
    cache = PriorCache(refresh_s=60, top_n=2, defer=True)
    first = cache.get(model, vectors, 125)  # nothing cached at all: computed once
    later = cache.compute(model, vectors, 600)
    assert model.calls == [120, 600]
    assert cache.get(model, vectors, 300) is first, "nearest: 120 is closer to 300 than 600"
    assert cache.get(model, vectors, 500) is later
    assert model.calls == [120, 600], "a request never computes"
    assert cache.wanted() == [480, 300], "the most recently asked first"
    for now in (900, 960, 1020):
        cache.get(model, vectors, now)
    assert cache.wanted() == [1020, 960], "only the most recent asks are kept"
    cache.compute(model, vectors, 1020)
    assert cache.wanted() == [960] and cache.cached(1020)
