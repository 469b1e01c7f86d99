"""Token buckets: how much of something a client (or a background task) may do per second.

A bucket holds up to ``capacity`` tokens and gains ``rate`` per second; an action
costing ``n`` goes ahead if ``n`` tokens are there and takes them, else it waits (or
is refused) for ``(n - tokens) / rate`` seconds. The standard rate limiter (e.g.
A. S. Tanenbaum, *Computer Networks*, 5th ed., §5.3.3): it allows bursts up to the
capacity and an average of ``rate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """One token bucket.

    Parameters
    ----------
    rate:
        Tokens gained per second (> 0).
    capacity:
        Most tokens held (>= 1); the bucket starts full.
    clock:
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError(f"`rate` must be > 0 (got {rate!r})")
        if not capacity >= 1:
            raise ValueError(f"`capacity` must be >= 1 (got {capacity!r})")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many; whether it did."""
        if self._refill() >= n:
            self._tokens -= n
            return True
        return False

    def wait_s(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be there (0 if they are now)."""
        return max(0.0, (min(n, self.capacity) - self._refill()) / self.rate)
