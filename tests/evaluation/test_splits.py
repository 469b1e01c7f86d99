"""Invariants of the splits: no leakage, cold users, targets, validation windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.evaluation.splits import (
    catalog_at,
    implicit_only,
    leave_last_n_out,
    temporal_split,
    validation_split,
)


def _frame(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    df["event"] = "rating"
    return df.astype({"user_id": object, "item_id": object})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temporal_split_invariants(seed: int, make_interactions) -> None:
    events = make_interactions(seed)
    split = temporal_split(events, 0.7, n_cold_history=2)
    cutoff = split.params["cutoff"]
    assert (split.train["timestamp"] < cutoff).all()
    assert len(split.train) == (events["timestamp"] < cutoff).sum()
    train_users = set(split.train["user_id"])
    train_items = set(split.train["item_id"])
    q = split.queries
    for i, user in enumerate(q.user_ids):
        history, times, targets = q.histories[i], q.history_times[i], split.targets[i]
        assert len(targets) > 0
        assert not set(targets) & set(history), "targets must exclude the history"
        new = split.is_new_target[i]
        assert new.tolist() == [t not in train_items for t in targets], "new = unseen in training"
        assert (times <= q.now[i]).all()
        assert split.is_cold[i] == (user not in train_users)
        if split.is_cold[i]:
            assert len(history) == 2
            assert (times >= cutoff).all()
            assert q.now[i] == times.max()
        else:
            assert q.now[i] == cutoff
            assert (times < cutoff).all()


def test_temporal_split_by_hand() -> None:
    events = _frame(
        [
            ("u1", "a", 5, 10),
            ("u1", "b", 5, 20),
            ("u2", "a", 5, 30),
            ("u2", "c", 5, 40),
            ("u1", "c", 5, 100),  # warm target
            ("u1", "a", 5, 110),  # already in u1's history: dropped
            ("u3", "a", 5, 120),  # cold user: first event becomes the history
            ("u3", "b", 5, 130),  # cold target
            ("u3", "z", 5, 140),  # item never in training: a new-item target
            ("u2", "c", 5, 150),  # in u2's history: dropped, u2 has no target left
        ]
    )
    split = temporal_split(events, cutoff=100, n_cold_history=1)
    assert list(split.queries.user_ids) == ["u1", "u3"]
    assert [list(t) for t in split.targets] == [["c"], ["b", "z"]]
    assert [f.tolist() for f in split.is_new_target] == [[False], [False, True]]
    assert split.is_cold.tolist() == [False, True]
    assert split.queries.now.tolist() == [100, 120]
    assert [list(h) for h in split.queries.histories] == [["a", "b"], ["a"]]
    assert split.n_dropped_seen == 2
    assert split.n_users_without_targets == 1
    # Without a catalog the candidates are the training items, from their first event.
    assert split.candidates.tolist() == ["a", "b", "c"]
    assert split.known_since.tolist() == [10, 20, 40]
    facts = split.describe()
    assert (facts["new_item_targets"], facts["users_with_new_item_targets"]) == (1, 1)
    assert (facts["warm_users"], facts["cold_users"], facts["candidates"]) == (1, 1, 3)


def test_catalog_at_keeps_items_seen_before_their_publish_time() -> None:
    items = pd.DataFrame(
        {"item_id": ["a", "b", "c", "d"], "publish_time": pd.Series([0, 200, 300, None])}
    )
    known, later = catalog_at(items, 100)
    assert known["item_id"].tolist() == ["a", "d"] and later["item_id"].tolist() == ["b", "c"]
    # b has an event before the cutoff: its publish time is wrong, it is known.
    known, later = catalog_at(items, 100, pd.Series(["a", "b"]))
    assert known["item_id"].tolist() == ["a", "b", "d"] and later["item_id"].tolist() == ["c"]


def test_warm_users_can_be_asked_with_their_first_test_events(interactions) -> None:
    events = _frame(
        [("u1", "a", 5, 10), ("u1", "b", 5, 100), ("u1", "n", 5, 130), ("u1", "c", 5, 140)]
    )
    items = pd.DataFrame({"item_id": ["n"], "publish_time": pd.Series([105])})
    batch = temporal_split(events, cutoff=100, items=items)
    assert batch.queries.now.tolist() == [100] and [list(t) for t in batch.targets] == [
        ["b", "n", "c"]
    ]
    live = temporal_split(events, cutoff=100, n_warm_history=1, items=items)
    # b becomes history and now its time (100); n (published at 105) is not known yet.
    assert [list(h) for h in live.queries.histories] == [["a", "b"]]
    assert (
        live.queries.now.tolist() == [100]
        and not live.candidate_mask(live.queries.now)[0][list(live.candidates).index("n")]
    )
    later = temporal_split(events, cutoff=100, n_warm_history=2, items=items)
    assert later.queries.now.tolist() == [130] and [list(t) for t in later.targets] == [["c"]]
    assert later.candidate_mask(later.queries.now)[0][list(later.candidates).index("n")]
    assert later.params["n_warm_history"] == 2 and not later.is_cold[0]
    live = temporal_split(interactions, 0.7, n_warm_history=2)
    assert validation_split(live).params["n_warm_history"] == 2
    warm = ~live.is_cold
    assert (live.queries.now[warm] >= live.params["cutoff"]).all()


def test_catalog_items_join_the_candidates_at_their_publish_time() -> None:
    rows = [("u1", "a", 5, 10), ("u2", "a", 5, 30), ("u1", "b", 5, 100), ("u3", "a", 5, 120)]
    events = _frame([*rows, ("u3", "z", 5, 140), ("u3", "y", 5, 150)])
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "z", "y", "x"],
            "publish_time": pd.Series([0, 50, 110, 145, None], dtype="Int64"),
        }
    )
    split = temporal_split(events, cutoff=100, n_cold_history=1, items=items)
    # x has no publish time and no event: nobody can know when it appeared.
    assert split.candidates.tolist() == ["a", "b", "y", "z"]
    assert split.known_since.tolist() == [0, 50, 145, 110]
    mask = split.candidate_mask(split.queries.now)
    # u1 at the cutoff (100): a and b; u3 at 120 (after its first event): z too.
    assert list(split.queries.user_ids) == ["u1", "u3"]
    assert mask.tolist() == [[True, True, False, False], [True, True, False, True]]
    assert [list(t) for t in split.targets] == [["b"], ["z", "y"]]
    assert [f.tolist() for f in split.is_new_target] == [[True], [True, True]]
    assert split.n_candidates == 3  # known at the latest now (120)
    val = validation_split(split)
    assert val.catalog_times.to_dict() == split.catalog_times.to_dict()


def test_leave_last_n_out_invariants(interactions: pd.DataFrame) -> None:
    split = leave_last_n_out(interactions, n=3)
    assert not split.is_cold.any()
    by_user = interactions.sort_values("timestamp", kind="stable").groupby("user_id")
    q = split.queries
    for i, user in enumerate(q.user_ids):
        events = by_user.get_group(user)
        held = events.iloc[-3:]
        assert q.now[i] == held["timestamp"].min()
        assert (q.history_times[i] <= q.now[i]).all()
        assert len(q.histories[i]) == len(events) - 3
        assert set(split.targets[i]) <= set(held["item_id"])
        assert not set(split.targets[i]) & set(q.histories[i])
    assert len(split.train) == len(interactions) - 3 * interactions["user_id"].nunique()


def test_leave_last_n_out_keeps_later_events_of_other_users() -> None:
    events = _frame(
        [("u1", "a", 5, 10), ("u1", "b", 5, 20), ("u2", "b", 5, 30), ("u2", "a", 5, 40)]
    )
    split = leave_last_n_out(events, n=1)
    assert split.queries.now.tolist() == [20, 40]
    assert [list(t) for t in split.targets] == [["b"], ["a"]]
    # The documented leak: u2's event at t=30 is in training although u1's query is at t=20.
    assert sorted(split.train["timestamp"]) == [10, 30]
    # So b, first trained on after u1's now, is no new-item target: every model knows it.
    assert [f.tolist() for f in split.is_new_target] == [[False], [False]]


def test_leave_last_n_out_new_items_are_those_without_training_events() -> None:
    events = _frame(
        [("u1", "a", 5, 10), ("u2", "a", 5, 15), ("u1", "z", 5, 20), ("u2", "b", 5, 30)]
    )
    split = leave_last_n_out(events, n=1)
    # z's only event is held out: nothing in training teaches it; b is u2's target too.
    assert [list(t) for t in split.targets] == [["z"], ["b"]]
    assert [f.tolist() for f in split.is_new_target] == [[True], [True]]
    assert split.describe()["new_item_targets"] == 2


def test_leave_last_n_out_skips_short_users() -> None:
    events = _frame([("u1", "a", 5, 10), ("u1", "b", 5, 20), ("u2", "b", 5, 5)])
    split = leave_last_n_out(events, n=1, min_history=1)
    assert list(split.queries.user_ids) == ["u1"]
    assert 5 in split.train["timestamp"].tolist(), "a short user's events stay in training"


def test_validation_split_stays_inside_training(interactions: pd.DataFrame) -> None:
    split = temporal_split(interactions)
    val = validation_split(split)
    assert val.protocol == split.protocol
    assert val.params["cutoff"] < split.params["cutoff"]
    assert val.train["timestamp"].max() < val.params["cutoff"]
    assert len(val.train) + sum(len(t) for t in val.targets) <= len(split.train)
    lno = leave_last_n_out(interactions, n=2)
    val = validation_split(lno)
    assert val.params == lno.params
    assert len(val.train) < len(lno.train)


def test_implicit_only_variants() -> None:
    events = _frame([("u1", "a", 5, 10), ("u1", "a", 2, 20), ("u1", "b", 3, 30), ("u2", "b", 4, 5)])
    everything = implicit_only(events)
    assert len(everything) == 3 and (everything["value"] == 1.0).all()
    liked = implicit_only(events, min_rating=4)
    assert sorted(zip(liked["user_id"], liked["item_id"], strict=True)) == [
        ("u1", "a"),
        ("u2", "b"),
    ]
    assert liked["timestamp"].is_monotonic_increasing


def test_errors_name_the_problem(interactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="lack column"):
        temporal_split(interactions.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="`quantile`"):
        temporal_split(interactions, quantile=1.5)
    with pytest.raises(ValueError, match="`n`"):
        leave_last_n_out(interactions, n=0)
    with pytest.raises(ValueError, match="both must be non-empty"):
        temporal_split(interactions, cutoff=-1)
    assert np.isfinite(temporal_split(interactions).params["quantile"])
