"""Token buckets: how much of something a client (or a background task) may do per second.

A bucket holds up to ``capacity`` tokens and gains ``rate`` per second; an action
costing ``n`` goes ahead if ``n`` tokens are there and takes them, else it waits (or
is refused) for ``(n - tokens) / rate`` seconds. The standard rate limiter (e.g.
A. S. Tanenbaum, *Computer Networks*, 5th ed., §5.3.3): it allows bursts up to the
capacity and an average of ``rate``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
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

    def charge(self, n: float) -> None:
        """Take ``n`` tokens after the fact, into debt if need be (a cost known late)."""
        self._refill()
        self._tokens -= n


class ClientQuotas:
    """One :class:`TokenBucket` per client key, for the most recently seen clients.

    Parameters
    ----------
    rate, capacity:
        Each client's bucket (see :class:`TokenBucket`).
    max_clients:
        Buckets kept; the least recently seen client's is dropped (it starts full
        again), so memory stays bounded however many addresses a client uses.
    clock:
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        TokenBucket(rate, capacity)  # validates the parameters once, naming them
        if max_clients < 1:
            raise ValueError(f"`max_clients` must be >= 1 (got {max_clients!r})")
        self.rate = rate
        self.capacity = capacity
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.capacity, self._clock)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def admit(self, key: str, cost: float) -> float:
        """Take ``cost`` (at most a full bucket) from ``key``'s bucket: 0.0, or seconds to wait."""
        bucket = self._bucket(key)
        cost = min(cost, self.capacity)
        return 0.0 if bucket.take(cost) else max(bucket.wait_s(cost), 1e-3)

    def charge(self, key: str, cost: float) -> None:
        """Add a cost known only afterwards (e.g. the rest of a chunked body)."""
        self._bucket(key).charge(cost)
