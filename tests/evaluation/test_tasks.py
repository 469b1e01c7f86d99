"""Item→item, query→item and category→item evaluation with the task baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.evaluation.splits import Split
from recops.evaluation.tasks import (
    evaluate_by_category,
    evaluate_search,
    evaluate_similar,
    title_query,
)
from recops.models.base import Queries
from recops.models.baselines import BM25Search, CategoryPopular, ItemKNN

ITEMS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Toy Story (1995)", "Heat (1995)", "Casino (1995)", "Sabrina (1954)"],
        "categories": [["Animation"], ["Action", "Crime"], ["Crime", "Drama"], ["Drama"]],
    }
)


@pytest.fixture
def train() -> pd.DataFrame:
    # a and b always together, c and d always together; d is the most popular.
    rows = [(f"u{u}", i, u) for u in range(6) for i in (("a", "b") if u < 3 else ("c", "d"))]
    rows += [("u9", "d", 50)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype(
        {"user_id": object, "item_id": object}
    )


@pytest.fixture
def split(train: pd.DataFrame) -> Split:
    return Split(
        train=train,
        queries=Queries(
            ["x", "y"],
            [np.array(["a"], dtype=object), np.array(["c"], dtype=object)],
            [np.array([1]), np.array([1])],
            np.array([100, 100]),
        ),
        targets=(np.array(["b", "c"], dtype=object), np.array(["d", "b"], dtype=object)),
        is_cold=np.array([False, True]),
        protocol="global_temporal",
    )


def test_title_query() -> None:
    assert title_query("Toy Story (1995)") == "toy story"
    assert title_query("Shawshank Redemption, The (1994)") == "shawshank redemption, the"
    assert title_query("Heat") == "heat"


def test_similar_finds_the_next_item(train: pd.DataFrame, split: Split) -> None:
    model = ItemKNN(shrink=0.0).fit(train)
    result = evaluate_similar(model, split, ks=(1, 2), n_boot=50)
    # Last item a -> next b; last item c -> next d: both found at rank 1.
    assert result.per_user["hit_rate@1"].tolist() == [1.0, 1.0]
    assert result.is_cold.tolist() == [False, True]


def test_similar_skips_unknown_query_items(train: pd.DataFrame, split: Split) -> None:
    model = ItemKNN().fit(train[train["item_id"] != "c"])
    result = evaluate_similar(model, split, ks=(1,), n_boot=50)
    assert result.user_ids.tolist() == ["x"]


def test_search_finds_the_titled_item(split: Split) -> None:
    result = evaluate_search(BM25Search().fit(ITEMS), split, ITEMS, ks=(1,), n_boot=50)
    assert sorted(result.user_ids) == ["b", "c", "d"]
    assert result.per_user["hit_rate@1"].tolist() == [1.0, 1.0, 1.0]


def test_search_with_held_out_texts(split: Split) -> None:
    items = ITEMS.assign(abstract=["toys come alive", "a crime heat wave", "", None])
    result = evaluate_search(
        BM25Search().fit(items), split, items, ks=(1,), n_boot=50, query_column="abstract"
    )
    # Only b has an abstract sharing a title word ("heat"); c's is empty, d has none.
    assert result.user_ids.tolist() == ["b"] and result.model.endswith("(abstract)")
    assert result.per_user["hit_rate@1"].tolist() == [1.0]
    with pytest.raises(ValueError, match="no 'summary' column"):
        evaluate_search(BM25Search().fit(items), split, items, query_column="summary")


def test_search_caps_the_number_of_queries(split: Split) -> None:
    result = evaluate_search(BM25Search().fit(ITEMS), split, ITEMS, ks=(1,), max_queries=2)
    assert result.n_users() == 2


def test_by_category_uses_the_rarest_category_of_the_next_item(
    train: pd.DataFrame, split: Split
) -> None:
    model = CategoryPopular().fit(train, ITEMS)
    result = evaluate_by_category(model, split, ITEMS, ks=(1, 2), n_boot=50)
    # User x: next item b has Action (1 item) and Crime (2): request Action -> b.
    # User y: next item d has only Drama -> targets d (b is not Drama); d ranks first.
    assert result.per_user["hit_rate@1"].tolist() == [1.0, 1.0]
    assert result.per_user["recall@2"].tolist() == [1.0, 1.0]
