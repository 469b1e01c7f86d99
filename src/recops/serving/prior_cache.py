"""The item prior of a served version, computed once per refresh window and shared."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from recops.serving.model_api import ServableModel


@dataclass(frozen=True)
class PriorSnapshot:
    """The item prior of one refresh window and its best items, ready to re-rank.

    Parameters
    ----------
    prior:
        ``(n_items,)`` float32 ``item_prior`` at the start of the window.
    top:
        Rows of the prior's best items, best first (at most ``top_n``).
    top_vectors:
        Their item vectors, contiguous: every request scores these same rows, so
        they stay in cache instead of being gathered from the item matrix.
    top_prior:
        ``prior[top]``.
    """

    prior: np.ndarray
    top: np.ndarray
    top_vectors: np.ndarray
    top_prior: np.ndarray


class PriorCache:
    """The item prior and its best items, computed once per ``refresh_s`` window.

    ``item_prior`` is O(n_items) (about 20 ms at 100k items): computing it per
    request, or even per second, would put that stall in the latency tail. A
    popularity/freshness term a minute old ranks the same for all practical
    purposes, so requests share the prior at the start of their ``refresh_s``
    window. The lock only guards the slots; the computation runs outside it.

    Two modes. In a library (``defer=False``) a window not cached yet is computed by
    the call that needs it. In the server (``defer=True``) a request never computes:
    it gets the cached window nearest to its own, and its window is noted as
    :meth:`wanted`, for the prefetcher (:mod:`recops.serving.prefetch`) to
    :meth:`compute` in a thread, at a bounded rate; the prefetcher also computes
    the next window before it starts, so live requests find theirs ready. Only the
    very first call of a version (nothing cached at all) computes inline; the
    server makes that call when it loads the version.
    """

    #: Windows kept: the present one, the next one, and two for replays.
    SLOTS = 4
    #: Wanted windows remembered, the most recently asked: a replay moves from one
    #: window to the next, and computing the ones it left would only evict the new.
    WANTED = 2

    def __init__(self, refresh_s: int = 60, top_n: int = 50, defer: bool = False) -> None:
        if refresh_s < 1:
            raise ValueError(f"`refresh_s` must be a positive int (got {refresh_s!r})")
        self.refresh_s = refresh_s
        self.top_n = top_n
        self.defer = defer
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, PriorSnapshot] = OrderedDict()
        self._wanted: OrderedDict[int, None] = OrderedDict()

    def window(self, now: int) -> int:
        """Start of the refresh window holding ``now``."""
        return now - now % self.refresh_s

    def cached(self, now: int) -> bool:
        """Whether the prior of ``now``'s window is ready."""
        with self._lock:
            return self.window(now) in self._slots

    def get(self, model: ServableModel, vectors: np.ndarray, now: int) -> PriorSnapshot:
        """The prior of ``now``'s window; in deferred mode, the nearest cached one if absent."""
        window = self.window(now)
        with self._lock:
            found = self._slots.get(window)
            if found is not None:
                self._slots.move_to_end(window)
                return found
            if self.defer and self._slots:
                self._wanted[window] = None
                self._wanted.move_to_end(window)
                while len(self._wanted) > self.WANTED:
                    self._wanted.popitem(last=False)
                nearest = min(self._slots, key=lambda w: (abs(w - window), w))
                return self._slots[nearest]
        return self.compute(model, vectors, window)

    def wanted(self) -> list[int]:
        """Windows requests asked for that are not cached, most recently asked first."""
        with self._lock:
            return [w for w in reversed(self._wanted) if w not in self._slots]

    def compute(self, model: ServableModel, vectors: np.ndarray, now: int) -> PriorSnapshot:
        """Compute and keep the prior of ``now``'s window (the caller's thread pays)."""
        window = self.window(now)
        prior = np.asarray(model.item_prior(window), dtype=np.float32)
        if len(prior) == 0 or prior.max() == prior.min():
            top = np.array([], dtype=np.int64)  # a flat prior favours nothing
        else:
            n = min(self.top_n, len(prior))
            part = np.argpartition(-prior, n - 1)[:n]
            top = part[np.argsort(-prior[part], kind="stable")].astype(np.int64)
        snapshot = PriorSnapshot(prior, top, np.ascontiguousarray(vectors[top]), prior[top])
        # The present window and the next one (what live traffic uses) are never
        # evicted by a replay's windows, or the prefetcher would compute them again.
        present = self.window(int(time.time()))
        keep = (present, present + self.refresh_s)
        with self._lock:
            self._slots[window] = snapshot
            self._wanted.pop(window, None)
            for old in [w for w in self._slots if w not in keep]:  # least recently used first
                if len(self._slots) <= self.SLOTS:
                    break
                del self._slots[old]
        return snapshot
