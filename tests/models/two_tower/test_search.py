"""Search: BM25 over the titles first or fused with the query tower by reciprocal rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.models.text import BM25Index, reciprocal_rank_fusion
from recops.models.two_tower import TwoTower
from recops.models.two_tower.model import SEARCH_CANDIDATES
from tests.models.two_tower.conftest import T0, in_mode

ODD = pd.DataFrame(
    {
        "item_id": ["b_odd", "z_city"],
        "title": ["beta rainy mountain zyzzyva", "Zürich Straße 東京タワー"],
        "categories": [["CatB"], ["CatA"]],
    }
)


@pytest.fixture(scope="module")
def grown(fitted: TwoTower) -> TwoTower:
    return fitted.with_items(ODD)[0]


def test_a_lexical_match_is_found_when_the_tower_alone_misses_it(grown: TwoTower) -> None:
    tower, _ = in_mode(grown, "tower").search(["zyzzyva"], k=5)
    assert "b_odd" not in tower[0], "premise: the tower does not know the word"
    ids, scores = in_mode(grown, "hybrid").search(["zyzzyva"], k=5)
    assert ids[0, 0] == "b_odd"
    # The others have no word of the query: they keep the tower's order.
    assert ids[0, 1:].tolist() == tower[0, :4].tolist()
    assert np.all(np.diff(scores[0]) < 0)
    lexical, bm25 = in_mode(grown, "lexical").search(["zyzzyva"], k=5)
    assert lexical[0].tolist() == ["b_odd", None, None, None, None]
    assert bm25[0, 0] > 0 and np.isneginf(bm25[0, 1:]).all()


def test_hybrid_is_the_rank_fusion_of_the_lexical_and_tower_rankings(grown: TwoTower) -> None:
    query = "alpha sunny beach zyzzyva"
    tower_ids, _ = in_mode(grown, "tower").search([query], k=SEARCH_CANDIDATES)
    tower_rows = [grown.item_index[i] for i in tower_ids[0]]
    lexical, _ = BM25Index.build(grown.titles_.tolist()).top(query, SEARCH_CANDIDATES)
    rows, fused = reciprocal_rank_fusion([lexical, np.array(tower_rows)], k=8)
    ids, scores = in_mode(grown, "hybrid").search([query], k=8)
    assert ids[0].tolist() == grown.item_ids_[rows].tolist()
    np.testing.assert_allclose(scores[0], fused)
    assert len(tower_ids[0]) == len(grown.item_ids_), "every item is a tower candidate"


def test_lexical_first_ranks_every_word_match_before_the_tower_fill(grown: TwoTower) -> None:
    query = "alpha sunny beach zyzzyva"
    lexical, bm25 = in_mode(grown, "lexical").search([query], k=len(grown.item_ids_))
    matches = [i for i in lexical[0] if i is not None]
    assert 1 < len(matches) < len(grown.item_ids_) - 5, "premise: some titles match"
    tower, _ = in_mode(grown, "tower").search([query], k=len(grown.item_ids_))
    k = len(matches) + 5
    ids, scores = grown.search([query], k=k)
    assert ids[0, : len(matches)].tolist() == matches
    np.testing.assert_allclose(scores[0, : len(matches)], bm25[0, : len(matches)])
    assert ids[0, len(matches) :].tolist() == [i for i in tower[0] if i not in matches][:5]
    assert (scores[0, len(matches) :] == 0).all()
    few, _ = grown.search([query], k=2)
    assert few[0].tolist() == matches[:2]


def test_non_ascii_queries_find_their_title(grown: TwoTower) -> None:
    for query in ("STRASSE", "zürich", "東京", "タワー"):
        ids, _ = grown.search([query], k=3)
        assert ids[0, 0] == "z_city", query


def test_added_items_are_searchable_and_the_original_is_unchanged(
    fitted: TwoTower, grown: TwoTower
) -> None:
    assert "zyzzyva" not in fitted._lexical.vocabulary
    assert fitted._lexical.n_docs == len(fitted.item_ids_) == len(fitted.titles_)
    assert grown._lexical.n_docs == len(grown.item_ids_) == len(grown.titles_)
    assert grown.titles_[grown.item_index["b_odd"]] == "beta rainy mountain zyzzyva"
    lexical, _ = in_mode(fitted, "lexical").search(["zyzzyva"], k=3)
    assert lexical[0].tolist() == [None, None, None]


def test_now_leaves_out_items_not_published_yet(fitted: TwoTower) -> None:
    late = ODD.assign(publish_time=pd.array([T0 + 1000 * 3600, None], dtype="Int64"))
    model = fitted.with_items(late)[0]
    for mode in ("lexical_first", "hybrid", "tower", "lexical"):
        searcher = in_mode(model, mode)
        before, _ = searcher.search(["zyzzyva"], k=30, now=T0 + 999 * 3600)
        after, _ = searcher.search(["zyzzyva"], k=30, now=T0 + 1001 * 3600)
        assert "b_odd" not in before[0] and "b_odd" in after[0], mode


def test_search_checks_its_arguments(fitted: TwoTower) -> None:
    with pytest.raises(TypeError, match="single string"):
        fitted.search("alpha", k=3)
    with pytest.raises(ValueError, match="`k`"):
        fitted.search(["alpha"], k=0)
    ids, scores = fitted.search(["alpha"], k=1000)
    assert ids.shape == scores.shape == (1, len(fitted.item_ids_))
