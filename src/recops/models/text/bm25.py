"""Okapi BM25 over short documents (item titles): the lexical half of search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recops.models.text.tokenize import tokenize

_NO_ROWS = np.array([], dtype=np.int64)
_NO_SCORES = np.array([], dtype=np.float64)


def _tokens(texts: Iterable[object]) -> list[list[str]]:
    return [tokenize(t) if isinstance(t, str) else tokenize(str(t)) for t in texts]


@dataclass(frozen=True)
class BM25Index:
    """Okapi BM25 (Robertson & Zaragoza, 2009) over a list of documents.

    A query with terms :math:`q` scores document :math:`d` as
    :math:`\\sum_{t \\in q} \\mathrm{idf}(t)\\, f_{td} (k_1 + 1) /
    (f_{td} + k_1 (1 - b + b\\, |d| / \\overline{|d|}))` with
    :math:`\\mathrm{idf}(t) = \\ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`; a word
    repeated in the query counts once. :math:`N` and :math:`\\overline{|d|}` are
    taken over the documents with at least one word (an item without a title
    never matches and does not dilute the statistics). Documents and queries are
    read by :func:`~recops.models.text.tokenize.tokenize`.

    Immutable: :meth:`extended` returns a new index, so a copy of a model that
    holds the old one keeps answering as before.

    Attributes
    ----------
    vocabulary:
        Column of each term.
    counts:
        ``(n_docs, n_terms)`` term counts.
    weights:
        ``(n_terms, n_docs)`` BM25 weight of each term in each document.
    k1, b:
        Term-frequency saturation and length normalisation.
    """

    vocabulary: dict[str, int]
    counts: sp.csr_matrix
    weights: sp.csr_matrix
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def build(cls, docs: Sequence[object], k1: float = 1.2, b: float = 0.75) -> BM25Index:
        """Index ``docs`` (texts; row ``i`` of the index is ``docs[i]``)."""
        empty = sp.csr_matrix((0, 0), dtype=np.float64)
        return cls({}, empty, empty.T.tocsr(), k1, b).extended(docs)

    @property
    def n_docs(self) -> int:
        """Number of documents indexed."""
        return int(self.counts.shape[0])

    def extended(self, docs: Sequence[object]) -> BM25Index:
        """A new index with ``docs`` after the documents of this one.

        New words join the vocabulary; the collection statistics (idf, mean length)
        are recomputed over all documents, so the result equals :meth:`build` over
        the concatenation. Costs the tokenization of ``docs`` plus O(postings).
        """
        tokens = _tokens(docs)
        vocabulary = dict(self.vocabulary)
        for doc in tokens:
            for term in doc:
                vocabulary.setdefault(term, len(vocabulary))
        width = len(vocabulary)
        old = sp.csr_matrix(
            (self.counts.data, self.counts.indices, self.counts.indptr),
            shape=(self.n_docs, width),
        )
        counts = sp.vstack([old, _count_matrix(tokens, vocabulary, binary=False)], format="csr")
        return BM25Index(vocabulary, counts, self._weigh(counts), self.k1, self.b)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        n_rows, n_terms = counts.shape
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        # A document without a word (an item without a title) is not part of the
        # collection: counted, it would shift the idf and shrink the mean length.
        n_docs = int(np.count_nonzero(lengths))
        df = np.bincount(counts.indices, minlength=n_terms)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        mean = lengths.sum() / n_docs if n_docs else 1.0
        norm = self.k1 * (1 - self.b + self.b * lengths / max(mean, 1e-12))
        rows = np.repeat(np.arange(n_rows), np.diff(counts.indptr))
        tf = counts.data
        data = idf[counts.indices] * tf * (self.k1 + 1) / (tf + norm[rows])
        weighted = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
        return weighted.T.tocsr()

    def query_matrix(self, texts: Sequence[object]) -> sp.csr_matrix:
        """``(len(texts), n_terms)`` 0/1 matrix of the indexed words of each query."""
        return _count_matrix(_tokens(texts), self.vocabulary, binary=True)

    def scores(self, texts: Sequence[object]) -> sp.csr_matrix:
        """``(len(texts), n_docs)`` sparse BM25 scores (zero: no word in common)."""
        return (self.query_matrix(texts) @ self.weights).tocsr()

    def top(
        self,
        text: str,
        n: int,
        *,
        eligible: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best matching documents of one query, best first.

        Only documents sharing a word with the query are returned (fewer than ``n``
        when fewer match); ties go to the lower row. ``eligible`` (a boolean mask
        over the documents) and ``exclude`` (rows) leave documents out before the
        ranking. Costs the postings of the query's words, not the collection.

        Returns
        -------
        tuple of numpy.ndarray
            Rows (int64) and BM25 scores (float64).
        """
        vocabulary = self.vocabulary
        terms = sorted({vocabulary[t] for t in tokenize(text) if t in vocabulary})
        if not terms or n < 1:
            return _NO_ROWS, _NO_SCORES
        postings = self.weights[terms]
        rows, where = np.unique(postings.indices, return_inverse=True)
        scores = np.bincount(where, weights=postings.data, minlength=len(rows))
        keep = np.ones(len(rows), dtype=bool)
        if eligible is not None:
            keep &= eligible[rows]
        if exclude is not None and len(exclude):
            keep &= ~np.isin(rows, exclude)
        rows, scores = rows[keep].astype(np.int64), scores[keep]
        order = np.lexsort((rows, -scores))[:n]
        return rows[order], scores[order]


def _count_matrix(
    docs: Sequence[list[str]], vocabulary: dict[str, int], *, binary: bool
) -> sp.csr_matrix:
    """Rows of term counts (or 0/1 with ``binary``) over ``vocabulary``; unknown words dropped."""
    cols = [vocabulary[t] for d in docs for t in d if t in vocabulary]
    rows = [r for r, d in enumerate(docs) for t in d if t in vocabulary]
    matrix = sp.csr_matrix(
        (np.ones(len(cols)), (rows, cols)), shape=(len(docs), len(vocabulary)), dtype=np.float64
    )
    matrix.sum_duplicates()
    if binary:
        matrix.data[:] = 1.0
    return matrix
