"""BM25 over item titles: the query→item (search) baseline."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.data.schema import ITEM_ID, TITLE
from recops.models.base import top_k, validate_k
from recops.models.baselines._params import check_float

_TOKEN = re.compile(r"\w+", flags=re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` (letters, digits and underscore runs)."""
    return _TOKEN.findall(str(text).lower())


class BM25Search:
    """Okapi BM25 (Robertson & Zaragoza, 2009) over the catalog's titles.

    A query with terms :math:`q` scores document :math:`d` as
    :math:`\\sum_{t \\in q} \\mathrm{idf}(t)\\, f_{td} (k_1 + 1) /
    (f_{td} + k_1 (1 - b + b\\, |d| / \\overline{|d|}))` with
    :math:`\\mathrm{idf}(t) = \\ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`.

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
        docs = [tokenize(t) for t in items[TITLE].fillna("").tolist()]
        self.vocabulary_ = {t: j for j, t in enumerate(sorted({t for d in docs for t in d}))}
        tf = self._term_matrix(docs)
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        df = np.bincount(tf.indices, minlength=len(self.vocabulary_))
        idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1 - self.b + self.b * lengths / max(lengths.mean(), 1e-12))
        rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        tf.data = idf[tf.indices] * tf.data * (self.k1 + 1) / (tf.data + norm[rows])
        self.weights_ = tf.T.tocsr()
        return self

    def _term_matrix(self, docs: Sequence[list[str]]) -> sp.csr_matrix:
        cols = [self.vocabulary_[t] for d in docs for t in d if t in self.vocabulary_]
        rows = [r for r, d in enumerate(docs) for t in d if t in self.vocabulary_]
        matrix = sp.csr_matrix(
            (np.ones(len(cols)), (rows, cols)), shape=(len(docs), len(self.vocabulary_))
        )
        matrix.sum_duplicates()
        return matrix

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
        query = self._term_matrix([tokenize(t) for t in texts])
        query.data[:] = 1.0  # a repeated query word counts once
        scores = np.asarray((query @ self.weights_).todense(), dtype=np.float64)
        idx, top = top_k(scores, k)
        return self.item_ids_[idx], top
