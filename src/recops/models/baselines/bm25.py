"""BM25 over item titles: the query→item (search) baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, TITLE
from recops.models.base import top_k, validate_k
from recops.models.baselines._params import check_float
from recops.models.text.bm25 import BM25Index


class BM25Search:
    """Okapi BM25 (Robertson & Zaragoza, 2009) over the catalog's titles.

    The scoring is :class:`~recops.models.text.bm25.BM25Index`'s, the same index
    the two-tower's hybrid search reads titles with (same tokenizer, same weights).

    Parameters
    ----------
    k1:
        Term-frequency saturation (>= 0).
    b:
        Length normalisation in [0, 1].
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = check_float("k1", k1, 0.0)
        self.b = check_float("b", b, 0.0, 1.0)

    def fit(self, items: pd.DataFrame) -> Self:
        """Index the ``title`` of every item in the catalog.

        Parameters
        ----------
        items:
            The catalog with ``item_id`` and ``title`` columns.

        Returns
        -------
        BM25Search
            The fitted index.
        """
        if not isinstance(items, pd.DataFrame) or {ITEM_ID, TITLE} - set(items.columns):
            raise ValueError(
                "BM25Search.fit: `items` must be a DataFrame with `item_id` and `title` "
                f"columns (got {type(items).__name__})"
            )
        self.item_ids_ = items[ITEM_ID].to_numpy(dtype=object)
        self.index_ = BM25Index.build(items[TITLE].fillna("").tolist(), self.k1, self.b)
        return self

    def search(self, texts: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each free-text query.

        Parameters
        ----------
        texts:
            One query string per request; words absent from every title are ignored.
        k:
            Number of items per request.

        Returns
        -------
        tuple of numpy.ndarray
            Item ids and BM25 scores, each of shape ``(len(texts), k)``.
        """
        k = validate_k(k)
        scores = self.index_.scores(texts).toarray()
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top
