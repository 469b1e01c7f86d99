"""Online user state: each user's most recent items, updated the moment an event arrives.

This is what makes serving real-time: the user tower reads the history from here on
every request, so a click changes the very next recommendation without retraining.
The store is bounded twice, by ``history_size`` items per user and by ``max_users``
users (least recently active evicted first), so memory stays flat under any traffic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from recops.data.schema import EVENT_TYPES

#: Events that say the user wanted the item; impressions and skips are not interest.
POSITIVE_EVENTS: frozenset[str] = EVENT_TYPES - {"impression", "skip"}


@dataclass(frozen=True)
class UserHistory:
    """A snapshot of one user's recent items, oldest first.

    Parameters
    ----------
    item_ids:
        Item ids, object array of str.
    timestamps:
        Unix seconds of the events, int64, same length.
    """

    item_ids: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


EMPTY_HISTORY = UserHistory(np.array([], dtype=object), np.array([], dtype=np.int64))


class UserStateStore:
    """Thread-safe bounded map ``user_id -> recent (item_id, timestamp)``.

    Parameters
    ----------
    history_size:
        Items kept per user; a repeated item moves to the end instead of appearing
        twice, so the history holds distinct items.
    max_users:
        Users kept; adding one more evicts the least recently updated user.
    """

    def __init__(self, history_size: int = 50, max_users: int = 1_000_000) -> None:
        for name, value in (("history_size", history_size), ("max_users", max_users)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int (got {value!r})")
        self.history_size = history_size
        self.max_users = max_users
        self._lock = threading.Lock()
        # Per user an insertion-ordered dict item -> timestamp: O(1) move-to-end for
        # repeats, and the outer OrderedDict gives LRU eviction of users.
        self._users: OrderedDict[str, OrderedDict[str, int]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)

    def record(self, user_id: str, item_id: str, timestamp: int) -> None:
        """Append one item to a user's history."""
        self.record_many([(user_id, item_id, timestamp)])

    def record_many(self, events: Iterable[tuple[str, str, int]]) -> None:
        """Append ``(user_id, item_id, timestamp)`` triples, in order, under one lock."""
        with self._lock:
            for user_id, item_id, timestamp in events:
                items = self._users.get(user_id)
                if items is None:
                    items = OrderedDict()
                    self._users[user_id] = items
                    if len(self._users) > self.max_users:
                        self._users.popitem(last=False)
                else:
                    self._users.move_to_end(user_id)
                items.pop(item_id, None)
                items[item_id] = int(timestamp)
                if len(items) > self.history_size:
                    items.popitem(last=False)

    def history(self, user_id: str) -> UserHistory:
        """The user's recent items, oldest first (empty for an unknown user)."""
        with self._lock:
            items = self._users.get(user_id)
            if not items:
                return EMPTY_HISTORY
            ids = list(items.keys())
            times = list(items.values())
        return UserHistory(np.array(ids, dtype=object), np.array(times, dtype=np.int64))

    def forget(self, user_id: str) -> bool:
        """Drop a user's state (e.g. a deletion request); True if there was any."""
        with self._lock:
            return self._users.pop(user_id, None) is not None
