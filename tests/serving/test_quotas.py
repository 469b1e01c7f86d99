"""Token buckets: bursts up to the capacity, then the rate."""

from __future__ import annotations

import pytest

from recops.serving.quotas import TokenBucket


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_allows_a_burst_then_its_rate() -> None:
    clock = _Clock()
    bucket = TokenBucket(rate=2.0, capacity=3.0, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s() == pytest.approx(0.5)
    clock.t = 0.5
    assert bucket.take() and not bucket.take()
    clock.t = 100.0  # never more than the capacity
    assert bucket.take(3.0) and not bucket.take()


def test_a_bucket_validates_its_parameters() -> None:
    with pytest.raises(ValueError, match="`rate` must be > 0"):
        TokenBucket(0.0, 1.0)
    with pytest.raises(ValueError, match="`capacity` must be >= 1"):
        TokenBucket(1.0, 0.5)
