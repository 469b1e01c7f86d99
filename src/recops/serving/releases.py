"""Which items are out at a moment: the served filter that keeps unpublished items back.

An item exists from its first training event or its publish time, whichever is
earlier (:meth:`recops.models.two_tower.TwoTower.known_at`): an article added with
a publish time in an hour (an embargo), or every article after the moment a replay
of the past is at, must not be recommended, searched or shown as similar before
then. Asking the model per request costs a pass over the catalog (O(n_items)); a
:class:`Releases` sorts the items by that time once per loaded version, so a request
finds the items not out yet at its ``now`` with one binary search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Up to this many items not out yet are dropped as exclusions (a slightly larger
#: fetch from the index); more than that (a replay far in the past) become a mask.
MAX_EXCLUDED = 256
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Releases:
    """The items whose first-seen time is known, sorted by it.

    Parameters
    ----------
    rows:
        Rows of those items (indices into the model's ``item_ids_``), in the order
        of ``times``.
    times:
        Their first-seen times, unix seconds, ascending.
    n_items:
        Rows of the model.
    """

    rows: np.ndarray
    times: np.ndarray
    n_items: int
    #: The latest first-seen time: from it on every item is out (the usual request).
    last: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "last", int(self.times[-1]) if len(self.times) else -_NEVER)

    @classmethod
    def empty(cls, n_items: int = 0) -> Releases:
        """Every item out at every moment (a model that says nothing of time)."""
        none = np.array([], dtype=np.int64)
        return cls(none, none, n_items)

    @classmethod
    def from_first_seen(cls, first_seen: np.ndarray) -> Releases:
        """From each row's first-seen time (``int64`` max: unknown, always out)."""
        first = np.asarray(first_seen, dtype=np.int64)
        rows = np.flatnonzero(first != _NEVER)
        order = np.argsort(first[rows], kind="stable")
        return cls(rows[order], first[rows][order], len(first))

    @classmethod
    def of_model(cls, model: object, n_items: int) -> Releases:
        """The times a TwoTower's ``known_at`` compares; :meth:`empty` for other models.

        They are the model's ``_first_seen`` (it has no public name for them yet);
        one per row, or the model is taken to say nothing of time.
        """
        first = getattr(model, "_first_seen", None)
        if first is None or len(first) != n_items:
            return cls.empty(n_items)
        return cls.from_first_seen(first)

    def unreleased(self, now: int) -> np.ndarray:
        """Rows not out yet at ``now``: first seen after it.

        An item is out from its publish second on, as the age filter has it (a window
        ``[now - max_age_s, now]`` keeps an item published at ``now``); ``known_at``
        counts it from the next second.
        """
        start = int(np.searchsorted(self.times, now, side="right"))
        return self.rows[start:]

    def restrict(
        self, now: int, eligible: np.ndarray | None, excluded: set[int]
    ) -> tuple[np.ndarray | None, set[int]]:
        """``(eligible, excluded)`` of a request, without the items not out at ``now``.

        A few such items join the exclusions (the arguments are not changed); many
        turn into an ``eligible`` mask, which costs one pass over the catalog.
        """
        if now >= self.last:  # every item is out: no NumPy call on the request path
            return eligible, excluded
        later = self.unreleased(now)  # not empty: some item comes out after `now`
        if len(later) <= MAX_EXCLUDED:
            return eligible, excluded | set(later.tolist())
        out = np.ones(self.n_items, dtype=np.bool_) if eligible is None else eligible.copy()
        out[later] = False
        return out, excluded
