"""Online user state: each user's most recent items, updated the moment an event arrives.

This is what makes serving real-time: the user tower reads the history from here on
every request, so a click changes the very next recommendation without retraining.

**Bounded, whatever the traffic.** Three bounds hold at every moment:
``history_size`` items per user, ``max_users`` users and ``max_bytes`` estimated bytes
(:func:`user_bytes`: the user id, the per-user maps and one entry per item). And
only items a loaded model knows take space (``known_item``): an event on an item no
model has cannot change a recommendation, so it stays in the event log only, and
the item id kept is the model's own string, shared by every user who has it. (Before
any model is loaded, every item is kept, for the first one to load.)

**Who loses what when a bound is reached.** The least recently active user (the one
whose last positive event is the oldest) is evicted first, entirely; a user
evicted and active again starts an online history afresh. What is lost is only the
online part: a user the model was trained on keeps the training history that lives
in the model (:attr:`recops.serving.loaded_model.LoadedModel.histories`), and every
event stays in the event log. A flood of events for new users (the write token and
the per-client quota limit who can send one, see :mod:`recops.serving.event_gate`)
can therefore evict real users' recent events, never their trained history, and
never grow memory beyond ``max_bytes``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from recops.data.schema import EVENT_TYPES

#: Events that say the user wanted the item; impressions and skips are not interest.
POSITIVE_EVENTS: frozenset[str] = EVENT_TYPES - {"impression", "skip"}

#: Estimated bytes of one user (map entry, its item map, the id object), besides its id.
USER_BYTES = 300
#: Estimated bytes of one history item (map slot and timestamp; the id is the model's).
ITEM_BYTES = 64


def user_bytes(user_id: str, n_items: int) -> int:
    """Estimated memory of one user of :class:`UserStateStore` with ``n_items`` items.

    Fitted with ``tracemalloc`` on CPython 3.11 (users of 1-50 items, ids of 10-200
    characters); it over-estimates by up to 30% for short histories and is exact at
    50 items (``tests/serving/test_state.py`` checks it).
    """
    return USER_BYTES + len(user_id) + ITEM_BYTES * n_items


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

#: Maps an event's item id to the id to keep (a model's own string), or None to drop it.
KnownItem = Callable[[str], str | None]


class UserStateStore:
    """Thread-safe bounded map ``user_id -> recent (item_id, timestamp)``.

    Parameters
    ----------
    history_size:
        Items kept per user; a repeated item moves to the end instead of appearing
        twice, so the history holds distinct items.
    max_users:
        Users kept; one more evicts the least recently active user.
    max_bytes:
        Estimated bytes kept (:func:`user_bytes` summed); above it the least recently
        active users are evicted. ``None``: no byte bound.
    known_item:
        Keeps an event only if this maps its item to an id (the served models'
        string for it); every event is kept when ``None``.
    """

    def __init__(
        self,
        history_size: int = 50,
        max_users: int = 1_000_000,
        max_bytes: int | None = None,
        known_item: KnownItem | None = None,
    ) -> None:
        for name, value in (("history_size", history_size), ("max_users", max_users)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int (got {value!r})")
        floor = user_bytes("", history_size) + 256
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < floor
        ):
            raise ValueError(
                f"`max_bytes` must be an int of at least {floor} (one full user of "
                f"history_size {history_size} with a long id), or None (got {max_bytes!r})"
            )
        self.history_size = history_size
        self.max_users = max_users
        self.max_bytes = max_bytes
        self.known_item = known_item
        self._lock = threading.Lock()
        # Per user an insertion-ordered dict item -> timestamp: O(1) move-to-end for
        # repeats (pop and insert again), lighter than an OrderedDict; the outer
        # OrderedDict gives LRU eviction of users.
        self._users: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._bytes = 0
        #: Users evicted to respect a bound, since start.
        self.evicted = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)

    @property
    def bytes(self) -> int:
        """Estimated bytes held now (:func:`user_bytes` summed over the users)."""
        return self._bytes

    def record(self, user_id: str, item_id: str, timestamp: int) -> None:
        """Append one item to a user's history."""
        self.record_many([(user_id, item_id, timestamp)])

    def record_many(self, events: Iterable[tuple[str, str, int]]) -> None:
        """Append ``(user_id, item_id, timestamp)`` triples, in order, under one lock."""
        known = self.known_item
        limit = self.history_size
        with self._lock:
            users = self._users
            for user_id, item_id, timestamp in events:
                item = item_id if known is None else known(item_id)
                if item is None:
                    continue
                items = users.get(user_id)
                if items is None:
                    items = users[user_id] = {}
                    self._bytes += USER_BYTES + len(user_id)
                else:
                    users.move_to_end(user_id)
                if items.pop(item, None) is None:
                    self._bytes += ITEM_BYTES
                items[item] = int(timestamp)
                if len(items) > limit:
                    del items[next(iter(items))]
                    self._bytes -= ITEM_BYTES
                self._evict()

    def _evict(self) -> None:
        # The user just written is the most recent: it is only evicted if alone, and
        # max_bytes holds one full user at least.
        budget = self.max_bytes
        while len(self._users) > self.max_users or (budget is not None and self._bytes > budget):
            user_id, items = self._users.popitem(last=False)
            self._bytes -= user_bytes(user_id, len(items))
            self.evicted += 1

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
            items = self._users.pop(user_id, None)
            if items is None:
                return False
            self._bytes -= user_bytes(user_id, len(items))
            return True
