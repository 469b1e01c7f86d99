"""The shared BM25 index: scores, non-ASCII words, growth, filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.baselines import BM25Search
from recops.models.text import BM25Index

TITLES = [
    "Toy Story (1995)",
    "Story of the Weeping Camel",
    "Heat (1995)",
    "Zürich Straße im Winter",
    "東京タワーの夜景",
    "Ｔｏｋｙｏ Story",
]


def test_bm25_index_scores_as_the_okapi_formula() -> None:
    index = BM25Index.build(["a b", "a c c", "d"], k1=1.2, b=0.75)
    rows, scores = index.top("c a", 5)
    lengths, mean, n = np.array([2, 3, 1]), 2.0, 3

    def weight(tf: float, df: int, doc: int) -> float:
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[doc] / mean))

    expected = {0: weight(1, 2, 0), 1: weight(1, 2, 1) + weight(2, 1, 1)}
    assert rows.tolist() == [1, 0]
    np.testing.assert_allclose(scores, [expected[1], expected[0]])


def test_non_ascii_queries_find_their_titles() -> None:
    index = BM25Index.build(TITLES)
    for query, row in (("STRASSE", 3), ("zurich", None), ("zürich", 3), ("東京", 4), ("tokyo", 5)):
        rows, _ = index.top(query, 3)
        assert rows.tolist() == ([] if row is None else [row]), query


def test_only_matches_are_returned_and_filters_apply_before_ranking() -> None:
    index = BM25Index.build(TITLES)
    rows, scores = index.top("story 1995", 10)
    # Both words first; then the rarer word (1995), then the shorter title.
    assert rows.tolist() == [0, 2, 5, 1]
    assert (scores > 0).all() and np.all(np.diff(scores) < 0)
    eligible = np.ones(len(TITLES), dtype=bool)
    eligible[0] = False
    kept, _ = index.top("story 1995", 10, eligible=eligible, exclude=np.array([2]))
    assert set(kept.tolist()) == {1, 5}
    assert index.top("story", 1)[0].tolist() == [5], "n cuts the ranking"
    assert index.top("nothing matches", 5)[0].tolist() == []


def test_extended_equals_an_index_built_on_everything() -> None:
    grown = BM25Index.build(TITLES[:2]).extended(TITLES[2:])
    whole = BM25Index.build(TITLES)
    for query in ("story", "heat 1995", "東京 story", "straße"):
        a, b = grown.top(query, 10), whole.top(query, 10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1])
    first = BM25Index.build(TITLES[:2])
    assert first.n_docs == 2 and first.top("heat", 5)[0].tolist() == [], "immutable"


def test_the_baseline_scores_with_the_shared_index() -> None:
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(len(TITLES))], "title": TITLES})
    baseline = BM25Search().fit(items)
    index = BM25Index.build(TITLES)
    ids, scores = baseline.search(["story 1995"], k=3)
    rows, expected = index.top("story 1995", 3)
    assert scores[0].tolist() == pytest.approx(expected.tolist())
    assert ids[0].tolist() == [f"i{r}" for r in rows]
    assert baseline.search(["東京"], k=1)[0][0, 0] == "i4", "the baseline reads non-ASCII titles"
