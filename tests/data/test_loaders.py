"""Loaders against the public datasets in shared/data, and the user-file loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.data import Dataset, load_dataset
from recops.data.errors import DatasetNotFoundError, DataValidationError
from recops.data.loaders import (
    BanditFeedback,
    load_mind,
    load_obd,
    load_obd_bandit_feedback,
    load_tabular,
    parse_column_map,
)
from recops.data.loaders.mind import load_mind_behaviors
from recops.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS


def _check_schema(dataset: Dataset) -> None:
    events = dataset.interactions
    assert tuple(events.columns[:5]) == INTERACTION_COLUMNS
    assert events["timestamp"].dtype == np.int64
    assert events["value"].dtype == np.float64
    assert pd.api.types.is_string_dtype(events["user_id"].dtype)
    assert pd.api.types.is_string_dtype(events["item_id"].dtype)
    assert events["timestamp"].is_monotonic_increasing
    assert tuple(dataset.items.columns[:4]) == ITEM_COLUMNS
    assert dataset.items["item_id"].is_unique
    assert all(isinstance(c, list) for c in dataset.items["categories"])


@pytest.fixture(scope="module")
def ml100k(shared_data) -> Dataset:
    return load_dataset("ml-100k", shared_data)


def test_movielens_100k_counts_and_schema(ml100k):
    events = ml100k.interactions
    _check_schema(ml100k)
    assert len(events) == 100_000
    assert events["user_id"].nunique() == 943
    assert events["item_id"].nunique() == 1_682
    assert set(events["event"]) == {"rating"}
    counts = events["value"].value_counts().sort_index()
    assert counts.tolist() == [6_110, 11_370, 27_145, 34_174, 21_201]
    assert len(ml100k.items) == 1_682
    assert len(ml100k.users) == 943


def test_movielens_100k_items_and_users(ml100k):
    toy_story = ml100k.items.set_index("item_id").loc["1"]
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["categories"] == ["Animation", "Children's", "Comedy"]
    assert toy_story["publish_time"] == 788_918_400  # 01-Jan-1995
    # u.item is latin-1: one title has an accented letter.
    assert ml100k.items["title"].str.contains("é").any()
    # Item 267 has no release date in u.item.
    assert ml100k.items["publish_time"].isna().sum() == 1
    first = ml100k.users.set_index("user_id").loc["1"]
    assert (first["age"], first["gender"], first["occupation"]) == (24, "M", "technician")


def test_movielens_latest_small(shared_data):
    dataset = load_dataset("ml-latest-small", shared_data)
    _check_schema(dataset)
    events = dataset.interactions
    assert len(events) == 100_836
    assert events["user_id"].nunique() == 610
    assert events["item_id"].nunique() == 9_724
    assert (events["timestamp"].min(), events["timestamp"].max()) == (828_124_615, 1_537_799_250)
    assert len(dataset.items) == 9_742
    jumanji = dataset.items.set_index("item_id").loc["2"]
    assert jumanji["categories"] == ["Adventure", "Children", "Fantasy"]
    no_genre = dataset.items["categories"].map(len) == 0
    assert no_genre.sum() == 34  # "(no genres listed)"


@pytest.fixture(scope="module")
def mind(shared_data) -> Dataset:
    return load_mind(shared_data / "mind-small")


def test_mind_events(mind):
    _check_schema(mind)
    events = mind.interactions
    shown = events[events["event"] == "impression"]
    assert len(shown) == 189_359
    assert shown["value"].sum() == 7_542
    clicks = events[(events["event"] == "click") & ~events["history"]]
    assert len(clicks) == 7_542
    assert shown["impression_id"].nunique() == 5_000
    assert events["user_id"].nunique() == 4_637
    assert shown["position"].min() == 0


def test_mind_history_precedes_first_impression(mind):
    events = mind.interactions
    history = events[events["history"]]
    assert history["position"].isna().all()
    first_seen = events[~events["history"]].groupby("user_id")["timestamp"].min()
    last_history = history.groupby("user_id")["timestamp"].max()
    assert (last_history < first_seen.loc[last_history.index]).all()
    # 107 impressions have an empty history, so some users have none.
    assert history["user_id"].nunique() < events["user_id"].nunique()


def test_mind_news_catalog(mind):
    items = mind.items
    assert len(items) == 2_000
    first = items.set_index("item_id").loc["N34700"]
    assert first["categories"] == ["news", "newspolitics"]
    assert first["abstract"].startswith("As music blasted")


def test_mind_bad_candidate_is_located(tmp_path):
    path = tmp_path / "behaviors.tsv"
    path.write_text(
        "1\tU1\t11/12/2019 2:14:46 PM\tN1 N2\tN3-1 N4-0\n2\tU2\t11/12/2019 3:14:46 PM\t\tN5-1 N6\n"
    )
    with pytest.raises(DataValidationError) as err:
        load_mind_behaviors(path)
    assert str(err.value) == (
        "behaviors.tsv, line 2, field 'value': expected a finite number, got an empty value"
    )


def test_mind_bad_time_is_located(tmp_path):
    path = tmp_path / "behaviors.tsv"
    path.write_text("1\tU1\tyesterday\tN1\tN3-1\n")
    with pytest.raises(DataValidationError, match=r"behaviors.tsv, line 1, field 'time'"):
        load_mind_behaviors(path)


@pytest.mark.parametrize(
    ("policy", "campaign", "n_items", "clicks"),
    [("random", "all", 80, 38), ("random", "men", 34, 46), ("bts", "women", 46, 46)],
)
def test_obd_events(shared_data, policy, campaign, n_items, clicks):
    dataset = load_obd(shared_data, policy, campaign)
    _check_schema(dataset)
    events = dataset.interactions
    assert len(events) == 10_000
    assert set(events["event"]) == {"impression"}
    assert events["value"].sum() == clicks
    assert set(events["position"]) == {0, 1, 2}
    assert len(dataset.items) == n_items
    assert {"propensity", "user_feature_0", "user-item_affinity_0"} <= set(events.columns)
    if policy == "random":
        assert np.allclose(events["propensity"], 1 / n_items)


def test_obd_bandit_feedback_follows_obp(shared_data):
    feedback = load_obd_bandit_feedback(shared_data / "obd", "random", "all")
    assert isinstance(feedback, BanditFeedback)
    assert feedback.n_rounds == 10_000
    assert (feedback.n_actions, feedback.len_list) == (80, 3)
    assert set(np.unique(feedback.position)) == {0, 1, 2}
    assert feedback.reward.sum() == 38
    assert np.allclose(feedback.pscore, 0.0125)
    assert feedback.context.shape[0] == 10_000
    assert feedback.action_context.shape == (80, 5)
    # Actions are the raw item ids, rows in time order.
    raw = pd.read_csv(shared_data / "obd/random/all/all.csv", index_col=0)
    raw = raw.sort_values("timestamp", kind="stable")
    assert np.array_equal(feedback.action, raw["item_id"].to_numpy())
    assert np.array_equal(feedback.position, raw["position"].to_numpy() - 1)
    assert feedback.to_dict()["n_rounds"] == 10_000


def test_obd_rejects_unknown_policy(shared_data):
    with pytest.raises(ValueError, match=r"`behavior_policy` must be one of random, bts"):
        load_obd_bandit_feedback(shared_data, "greedy")


def test_parquet_round_trip(ml100k, tmp_path):
    loaded = Dataset.load(ml100k.save(tmp_path / "ml"))
    pd.testing.assert_frame_equal(loaded.interactions, ml100k.interactions)
    pd.testing.assert_frame_equal(loaded.users, ml100k.users)
    pd.testing.assert_frame_equal(loaded.items, ml100k.items)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RECOPS_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"recops data fetch ml-100k.*RECOPS_DATA_DIR"):
        load_dataset("ml-100k", tmp_path)


def test_data_dir_comes_from_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv("RECOPS_DATA_DIR", str(shared_data))
    assert len(load_dataset("obd", campaign="men").items) == 34


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'ml-1m' \(expected one of ml-100k"):
        load_dataset("ml-1m")


def test_tabular_with_column_map_and_defaults(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,10,4.5,200\n2,11,3,100\n"
    )
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres,publish_time\n10,"Heat, the film",Crime|Drama,1995-12-15\n11,Up,,\n'
    )
    columns = parse_column_map(["userId=user_id", "movieId=item_id", "genres=categories"])
    dataset, reports = load_tabular(
        tmp_path / "ratings.csv", tmp_path / "movies.csv", columns=columns
    )
    events = dataset.interactions
    assert events[["user_id", "item_id", "event", "value", "timestamp"]].values.tolist() == [
        ["2", "11", "rating", 3.0, 100],
        ["1", "10", "rating", 4.5, 200],
    ]
    assert dataset.items["title"].tolist() == ["Heat, the film", "Up"]
    assert dataset.items["categories"].tolist() == [["Crime", "Drama"], []]
    assert dataset.items["publish_time"].tolist() == [818_985_600, pd.NA]
    assert [r.source for r in reports] == ["movies.csv", "ratings.csv"]


def test_tabular_clicks_without_event_or_value_from_parquet(tmp_path):
    path = tmp_path / "clicks.parquet"
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1, 2]}).to_parquet(
        path
    )
    dataset, _ = load_tabular(path)
    assert dataset.interactions["event"].tolist() == ["click", "click"]
    assert dataset.interactions["value"].tolist() == [1.0, 1.0]
    assert dataset.name == "clicks"


def test_tabular_parquet_problems_are_located_by_row(tmp_path):
    path = tmp_path / "clicks.parquet"
    pd.DataFrame({"user_id": ["a", ""], "item_id": ["x", "y"], "timestamp": [1, 2]}).to_parquet(
        path
    )
    with pytest.raises(DataValidationError, match=r"clicks.parquet, row 1, field 'user_id'"):
        load_tabular(path)


def test_column_map_must_be_pairs():
    with pytest.raises(ValueError, match=r"must look like 'userId=user_id' \(got 'userId'\)"):
        parse_column_map(["userId"])
