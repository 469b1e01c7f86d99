"""Turning ids, titles, categories and timestamps into tensors the towers read.

Index 0 is reserved everywhere for "padding / unknown": item indices run
``1..n_items``, category indices ``1..n_categories`` and hashed tokens
``1..text_buckets``. That lets unknown ids in a real-time query map to 0 and be
ignored by a zero weight instead of raising.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recops.models.text.tokenize import tokenize


def hash_tokens(text: str, n_buckets: int) -> list[int]:
    """Hash bucket ids in ``1..n_buckets`` of the words of ``text``.

    crc32 rather than Python's ``hash`` because the latter is salted per process,
    which would make a saved model read titles differently after loading.
    """
    return [zlib.crc32(tok.encode("utf-8")) % n_buckets + 1 for tok in tokenize(text)]


def pad_lists(rows: Sequence[Sequence[int]], min_width: int = 1) -> np.ndarray:
    """Stack ragged int lists into a zero-padded ``(n, width)`` int64 array."""
    width = max([min_width, *(len(r) for r in rows)])
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def hash_texts(texts: Iterable[str], n_buckets: int) -> np.ndarray:
    """Zero-padded ``(n, width)`` token-bucket ids of several texts."""
    return pad_lists([hash_tokens(t, n_buckets) for t in texts])


@dataclass(frozen=True)
class CatalogFeatures:
    """Content of every item as padded index arrays (row ``i`` is item index ``i + 1``).

    Parameters
    ----------
    categories:
        ``(n_items, max_categories)`` category indices, 0 = padding.
    tokens:
        ``(n_items, max_tokens)`` hashed title token ids, 0 = padding.
    publish_time:
        ``(n_items,)`` unix seconds, or ``-1`` when unknown.
    """

    categories: np.ndarray
    tokens: np.ndarray
    publish_time: np.ndarray

    def __len__(self) -> int:
        return len(self.publish_time)

    def append(self, other: CatalogFeatures) -> CatalogFeatures:
        """A new catalog with ``other``'s rows after these (padding widened as needed)."""
        return CatalogFeatures(
            _stack(self.categories, other.categories),
            _stack(self.tokens, other.tokens),
            np.concatenate([self.publish_time, other.publish_time]),
        )


def _stack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    width = max(a.shape[1], b.shape[1])
    out = np.zeros((len(a) + len(b), width), dtype=np.int64)
    out[: len(a), : a.shape[1]] = a
    out[len(a) :, : b.shape[1]] = b
    return out


def build_catalog_features(
    item_ids: np.ndarray,
    category_index: dict[str, int],
    titles: dict[str, str],
    item_categories: dict[str, list[str]],
    publish_times: dict[str, int],
    n_buckets: int,
) -> CatalogFeatures:
    """Index the content of ``item_ids``; items missing from the catalog get none."""
    cats = [[category_index[c] for c in item_categories.get(i, [])] for i in item_ids]
    toks = [hash_tokens(titles.get(i, ""), n_buckets) for i in item_ids]
    pub = np.array([publish_times.get(i, -1) for i in item_ids], dtype=np.int64)
    return CatalogFeatures(pad_lists(cats), pad_lists(toks), pub)


@dataclass(frozen=True)
class TimeCounts:
    """Cumulative per-item event counts in fixed time buckets: O(1) causal features.

    ``cum[b, j]`` is the number of training events of item index ``j`` strictly
    before ``origin + b * width``. The count over ``[now - w, now)`` is read as
    ``cum[bucket(now), j] - cum[bucket(now - w), j]`` with ``bucket(t) =
    floor((t - origin) / width)``: only buckets that ended by ``now`` are counted,
    so no event at or after ``now`` can leak into a feature (at the price of
    ignoring the last partial bucket).

    Parameters
    ----------
    cum:
        ``(n_buckets + 1, n_items + 1)`` int32 cumulative counts (column 0: padding).
        Time-major, because training reads many items at one time: one cache-local
        row per example.
    origin, width:
        Start and length in seconds of the buckets.
    first_seen:
        ``(n_items + 1,)`` time of the first event (or publish time when known and
        earlier); ``int64 max`` when the item has neither.
    windows:
        Window lengths in seconds.
    """

    cum: np.ndarray
    origin: int
    width: int
    first_seen: np.ndarray
    windows: tuple[int, ...]

    @property
    def n_features(self) -> int:
        """Windows, all-time count, log age and a "not yet seen" flag."""
        return len(self.windows) + 3

    def with_items(self, first_seen: np.ndarray) -> TimeCounts:
        """Counts that also know items added after training (no event, ``first_seen``).

        The cumulative table is not widened: an index beyond its columns reads the
        padding column, whose counts are all zero.
        """
        first = np.concatenate([self.first_seen, np.asarray(first_seen, dtype=np.int64)])
        return dataclasses.replace(self, first_seen=first)

    def bucket(self, t: np.ndarray) -> np.ndarray:
        """Index of the cumulative-count row that holds events strictly before ``t``."""
        b = np.floor_divide(t - self.origin, self.width)
        return np.clip(b, 0, self.cum.shape[0] - 1)

    def features(self, items: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Float32 features of shape ``items.shape + (n_features,)``.

        ``items`` holds item indices (0 = padding) and ``now`` unix seconds,
        broadcastable to ``items``: log1p of the count in each window, log1p of the
        all-time count, log1p of the age in days, and 1 if the item has no event
        and no publish time before ``now``.
        """
        items, now = np.broadcast_arrays(np.asarray(items), np.asarray(now, dtype=np.int64))
        columns = np.where(items < self.cum.shape[1], items, 0)
        b_now = self.bucket(now)
        total = self.cum[b_now, columns].astype(np.float32)
        feats = [
            np.log1p(total - self.cum[self.bucket(now - w), columns].astype(np.float32))
            for w in self.windows
        ]
        first = self.first_seen[items]
        age_days = np.maximum(now - np.minimum(first, now), 0) / 86_400.0
        unseen = (first >= now).astype(np.float32)
        feats += [np.log1p(total), np.log1p(age_days).astype(np.float32), unseen]
        return np.stack(feats, axis=-1).astype(np.float32)


def build_time_counts(
    item_index: np.ndarray,
    timestamps: np.ndarray,
    n_items: int,
    windows: tuple[int, ...],
    max_cells: int,
    publish_time: np.ndarray | None = None,
) -> TimeCounts:
    """Bucket the events ``(item_index, timestamps)`` into a :class:`TimeCounts`.

    The bucket width is the finest of one hour and whatever keeps the table under
    ``max_cells`` cells: an hour resolves the shortest useful window (a day) and
    the cap keeps a 20-year dataset's table in memory.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    origin = int(ts.min()) if len(ts) else 0
    span = (int(ts.max()) - origin + 1) if len(ts) else 1
    max_buckets = max(1, max_cells // (n_items + 1) - 1)
    width = max(3600, -(-span // max_buckets))
    n_buckets = -(-span // width) + 1
    bucket = (ts - origin) // width
    flat = np.bincount(
        np.asarray(item_index, dtype=np.int64) * n_buckets + bucket,
        minlength=(n_items + 1) * n_buckets,
    ).reshape(n_items + 1, n_buckets)
    cum = np.zeros((n_buckets + 1, n_items + 1), dtype=np.int32)
    np.cumsum(flat.T, axis=0, out=cum[1:])
    first = np.full(n_items + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, np.asarray(item_index, dtype=np.int64), ts)
    if publish_time is not None:
        known = publish_time >= 0
        first[1:][known] = np.minimum(first[1:][known], publish_time[known])
    return TimeCounts(cum=cum, origin=origin, width=int(width), first_seen=first, windows=windows)


@dataclass(frozen=True)
class Sequences:
    """Every training event with the user's history strictly before it.

    Histories are not stored (``n × max_history`` indices and times would take
    8 GB at 10M events): each row keeps where its user's events start and where
    its history ends, and :meth:`history_at` reads the items in between.

    Parameters
    ----------
    users:
        ``(n,)`` user index of each event (0 = unknown user).
    items:
        ``(n,)`` item index of each event.
    times:
        ``(n,)`` unix seconds of each event.
    start:
        ``(n,)`` first row of the event's user (rows are sorted by user, then time).
    end:
        ``(n,)`` one past the last row of its history: the user's first row at the
        event's own time (events at the same second do not see each other).
    max_history:
        How many of the latest items a history holds.
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    start: np.ndarray
    end: np.ndarray
    max_history: int

    def _window(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = self.end[rows][:, None] - self.max_history + np.arange(self.max_history)[None, :]
        valid = idx >= self.start[rows][:, None]
        return np.clip(idx, 0, max(len(self.items) - 1, 0)), valid

    def history_at(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), max_history)`` item indices before each row, most recent last, 0-padded."""
        idx, valid = self._window(rows)
        return np.where(valid, self.items[idx], 0)

    def history_times_at(self, rows: np.ndarray) -> np.ndarray:
        """The timestamps of :meth:`history_at` (0 where padded)."""
        idx, valid = self._window(rows)
        return np.where(valid, self.times[idx], 0)

    def previous_item(self, rows: np.ndarray) -> np.ndarray:
        """The item of each row's latest history event (0 when the history is empty)."""
        has = self.end[rows] > self.start[rows]
        return np.where(has, self.items[np.maximum(self.end[rows] - 1, 0)], 0)

    def future_rows(
        self, rows: np.ndarray, window: int, rng: np.random.Generator, last: np.ndarray
    ) -> np.ndarray:
        """For each row, a row drawn uniformly from the same user's next ``window`` events.

        ``last[r]`` is the last row the draw may reach for row ``r`` (see
        :meth:`last_rows`); the row itself is a candidate, so ``window = 1``
        returns ``rows``.
        """
        if window <= 1:
            return rows
        return np.minimum(rows + rng.integers(0, window, size=len(rows)), last[rows])

    def last_rows(self, allowed: np.ndarray) -> np.ndarray:
        """Per row, the user's last row among ``allowed`` (row indices).

        Training on the events before a validation window must not draw positives
        from inside it: ``allowed`` holds, per user, a time-ordered prefix of their
        rows, and a draw is capped at that prefix's end.
        """
        n = len(self.items)
        member = np.zeros(n, dtype=bool)
        member[allowed] = True
        is_last = member & np.r_[(self.users[1:] != self.users[:-1]) | ~member[1:], True]
        return np.minimum.accumulate(np.where(is_last, np.arange(n), n)[::-1])[::-1]


def build_sequences(
    users: np.ndarray, items: np.ndarray, times: np.ndarray, max_history: int
) -> Sequences:
    """Histories for every event, vectorised (no Python loop over events).

    Events with the same user and timestamp do not see each other: only strictly
    earlier events form the history, as a real-time system would have it.
    """
    order = np.lexsort((items, times, users))
    u, it, t = users[order], items[order], times[order]
    n = len(u)
    pos = np.arange(n)
    new_user = np.r_[True, u[1:] != u[:-1]] if n else np.zeros(0, dtype=bool)
    user_start = np.maximum.accumulate(np.where(new_user, pos, 0)) if n else pos
    new_time = new_user | np.r_[True, t[1:] != t[:-1]] if n else new_user
    hist_end = np.maximum.accumulate(np.where(new_time, pos, 0)) if n else pos
    return Sequences(u, it, t, user_start, hist_end, max_history)


def consecutive_pairs(seq: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """(previous item, item) pairs of distinct consecutive items in histories."""
    prev = seq.previous_item(np.arange(len(seq.items)))
    keep = (prev > 0) & (prev != seq.items)
    return prev[keep], seq.items[keep]
