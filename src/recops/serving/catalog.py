"""Per-item facts the filters need: categories and publish times, aligned to the index.

Built once per loaded model from a catalog table in the items schema of
:mod:`recops.data.schema` (``item_id``, ``categories``, ``publish_time``), so a
category filter is one boolean-mask lookup and an age filter one comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recops.data.schema import CATEGORIES, ITEM_ID, PUBLISH_TIME

#: Publish time of items whose time is unknown; an age filter never keeps them.
UNKNOWN_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True)
class ItemCatalog:
    """Category masks and publish times of the model's items, in index row order.

    Parameters
    ----------
    category_masks:
        Category name → boolean mask ``(n_items,)`` of items in that category.
    publish_time:
        ``(n_items,)`` int64 unix seconds; :data:`UNKNOWN_TIME` where unknown.
    """

    category_masks: dict[str, np.ndarray]
    publish_time: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.publish_time)

    @classmethod
    def empty(cls, n_items: int, categories: Iterable[str] = ()) -> ItemCatalog:
        """A catalog that knows the category names but no item's facts."""
        masks = {c: np.zeros(n_items, dtype=np.bool_) for c in categories}
        return cls(masks, np.full(n_items, UNKNOWN_TIME, dtype=np.int64))

    @classmethod
    def from_records(
        cls,
        item_ids: Sequence[str],
        item_categories: dict[str, Sequence[str]],
        publish_times: dict[str, int | None],
        categories: Iterable[str] = (),
    ) -> ItemCatalog:
        """Build from per-item dicts; items missing from them get no facts.

        Parameters
        ----------
        item_ids:
            The model's items in index row order.
        item_categories:
            Item id → its categories.
        publish_times:
            Item id → unix publish time (``None`` when unknown).
        categories:
            Category names known to the model; each gets a mask even if empty.
        """
        n = len(item_ids)
        masks = {c: np.zeros(n, dtype=np.bool_) for c in categories}
        published = np.full(n, UNKNOWN_TIME, dtype=np.int64)
        for row, item in enumerate(item_ids):
            for category in item_categories.get(item, ()):
                masks.setdefault(category, np.zeros(n, dtype=np.bool_))[row] = True
            t = publish_times.get(item)
            if t is not None:
                published[row] = int(t)
        return cls(masks, published)

    @classmethod
    def from_parquet(
        cls, path: str | Path, item_ids: Sequence[str], categories: Iterable[str] = ()
    ) -> ItemCatalog:
        """Read an items table (``item_id``, ``categories``, ``publish_time``)."""
        import pandas as pd

        frame = pd.read_parquet(path)
        if ITEM_ID not in frame:
            raise ValueError(f"{path}: the items table has no `{ITEM_ID}` column")
        ids = frame[ITEM_ID].astype(str).tolist()
        cats = frame[CATEGORIES].tolist() if CATEGORIES in frame else [[] for _ in ids]
        times = frame[PUBLISH_TIME].tolist() if PUBLISH_TIME in frame else [None] * len(ids)
        return cls.from_records(
            item_ids,
            {
                i: [str(c) for c in (cs if cs is not None else [])]
                for i, cs in zip(ids, cats, strict=True)
            },
            {i: (None if pd.isna(t) else int(t)) for i, t in zip(ids, times, strict=True)},
            categories,
        )

    def eligible(
        self,
        categories: Sequence[str] | None,
        published_after: int | None,
        published_before: int | None = None,
    ) -> np.ndarray | None:
        """Mask of items passing the filters, or ``None`` when nothing is filtered.

        Parameters
        ----------
        categories:
            Keep items in at least one of these categories.
        published_after, published_before:
            Keep items published in this closed time range (unknown times never pass).

        Raises
        ------
        KeyError
            Naming the first unknown category.
        """
        mask: np.ndarray | None = None
        if categories:
            mask = np.zeros(self.n_items, dtype=np.bool_)
            for category in categories:
                if category not in self.category_masks:
                    raise KeyError(category)
                mask |= self.category_masks[category]
        if published_after is not None or published_before is not None:
            fresh = self.publish_time != UNKNOWN_TIME
            if published_after is not None:
                fresh &= self.publish_time >= published_after
            if published_before is not None:
                fresh &= self.publish_time <= published_before
            mask = fresh if mask is None else mask & fresh
        return mask
