"""Feature building: hashing, causal time counts, histories strictly before each event."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recops.models.two_tower.features import (
    build_sequences,
    build_time_counts,
    consecutive_pairs,
    hash_tokens,
    tokenize,
)

DAY = 86_400


def test_tokens_are_lowercase_words_and_hashing_is_stable() -> None:
    assert tokenize("Toy Story (1995)!") == ["toy", "story", "1995"]
    first = hash_tokens("Toy Story", 1000)
    assert first == hash_tokens("toy  STORY", 1000)
    assert all(1 <= b <= 1000 for b in first)
    # crc32, unlike hash(), is the same in every process and on every machine.
    assert first[0] == zlib.crc32(b"toy") % 1000 + 1


def test_tokens_keep_every_script() -> None:
    # Issue 11: "Zürich" became `z`, `rich` and Japanese titles vanished.
    assert tokenize("Zürich Straße") == ["zürich", "strasse"]
    assert tokenize("Ｔｏｋｙｏ café") == ["tokyo", "café"]
    # Scripts written without spaces are cut into character bigrams.
    assert tokenize("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert tokenize("新 news") == ["新", "news"]
    assert hash_tokens("東京タワー", 1000) and hash_tokens("Zürich", 1000) != hash_tokens("z", 1000)


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(st.integers(0, 60 * DAY), min_size=1, max_size=60),
    now=st.integers(0, 70 * DAY),
)
def test_time_features_never_count_events_at_or_after_now(times: list[int], now: int) -> None:
    ts = np.array(times, dtype=np.int64)
    items = np.ones(len(ts), dtype=np.int64)
    counts = build_time_counts(items, ts, 1, (DAY, 7 * DAY), max_cells=100_000)
    feats = counts.features(np.array([1]), np.array([now]))[0]
    before = ts < now
    # all-time count (feature index 2) counts only events before now ...
    assert np.expm1(feats[2]) <= before.sum() + 1e-4
    # ... and each window count only events in [now - w, now).
    for k, w in enumerate((DAY, 7 * DAY)):
        assert np.expm1(feats[k]) <= (before & (ts >= now - w - counts.width)).sum() + 1e-4
    # "unseen" iff no event before now.
    assert feats[4] == float(not before.any())


def test_time_features_count_completed_buckets_exactly() -> None:
    hour = 3600
    ts = np.array([0, 10 * hour, 30 * hour, 30 * hour + 5, 47 * hour], dtype=np.int64)
    counts = build_time_counts(np.ones(5, dtype=np.int64), ts, 1, (DAY,), max_cells=10_000)
    assert counts.width == hour
    feats = counts.features(np.array([1, 1]), np.array([48 * hour, 31 * hour]))
    np.testing.assert_allclose(np.expm1(feats[:, 0]), [3, 3], rtol=1e-5)  # last 24 h
    np.testing.assert_allclose(np.expm1(feats[:, 1]), [5, 4], rtol=1e-5)  # all time
    np.testing.assert_allclose(np.expm1(feats[:, 2]), [2.0, 31 / 24], rtol=1e-5)  # age days


def test_publish_time_sets_age_before_the_first_event() -> None:
    counts = build_time_counts(
        np.array([1], dtype=np.int64),
        np.array([10 * DAY]),
        1,
        (DAY,),
        10_000,
        publish_time=np.array([2 * DAY]),
    )
    feats = counts.features(np.array([1]), np.array([5 * DAY]))[0]
    np.testing.assert_allclose(np.expm1(feats[2]), 3.0, rtol=1e-5)
    assert feats[3] == 0.0  # published, so not "unseen", though nobody clicked yet


def test_histories_hold_only_strictly_earlier_events_most_recent_last() -> None:
    users = np.array([1, 1, 1, 1, 2, 2])
    items = np.array([10, 11, 12, 13, 20, 21])
    times = np.array([100, 200, 200, 300, 50, 60])
    seq = build_sequences(users, items, times, max_history=2)
    rows = {(int(u), int(i)): k for k, (u, i) in enumerate(zip(seq.users, seq.items, strict=True))}
    assert seq.history_at(np.array([rows[1, 10]]))[0].tolist() == [0, 0]
    assert seq.history_at(np.array([rows[1, 11]]))[0].tolist() == [0, 10]
    assert seq.history_at(np.array([rows[1, 12]]))[0].tolist() == [
        0,
        10,
    ]  # same second: not history
    assert seq.history_at(np.array([rows[1, 13]]))[0].tolist() == [11, 12]
    assert seq.history_at(np.array([rows[2, 21]]))[0].tolist() == [
        0,
        20,
    ]  # never another user's items
    assert seq.history_times_at(np.array([rows[1, 13]]))[0].tolist() == [200, 200]
    prev, nxt = consecutive_pairs(seq)
    assert set(zip(prev.tolist(), nxt.tolist(), strict=True)) == {
        (10, 11),
        (10, 12),
        (12, 13),
        (20, 21),
    }
