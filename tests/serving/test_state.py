"""Online user state: bounded, ordered, thread-safe."""

from __future__ import annotations

import threading

import pytest

from recops.serving.state import POSITIVE_EVENTS, UserStateStore


def test_history_is_ordered_distinct_and_bounded() -> None:
    store = UserStateStore(history_size=3)
    for t, item in enumerate(["a", "b", "a", "c", "d"]):
        store.record("u", item, t)
    history = store.history("u")
    assert history.item_ids.tolist() == ["a", "c", "d"]
    assert history.timestamps.tolist() == [2, 3, 4]
    assert len(store.history("nobody")) == 0


def test_least_recent_user_is_evicted() -> None:
    store = UserStateStore(max_users=2)
    store.record("u1", "a", 1)
    store.record("u2", "a", 1)
    store.record("u1", "b", 2)  # u1 is now the most recent
    store.record("u3", "a", 3)
    assert len(store) == 2
    assert len(store.history("u2")) == 0
    assert store.history("u1").item_ids.tolist() == ["a", "b"]
    assert store.forget("u1") and not store.forget("u1")


def test_concurrent_writers_lose_nothing() -> None:
    store = UserStateStore(history_size=1000)

    def write(worker: int) -> None:
        store.record_many((f"u{worker}", f"i{j}", j) for j in range(500))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(store.history(f"u{w}")) == 500 for w in range(4))


def test_validation_and_positive_events() -> None:
    with pytest.raises(ValueError, match="history_size"):
        UserStateStore(history_size=0)
    with pytest.raises(ValueError, match="max_users"):
        UserStateStore(max_users=True)  # type: ignore[arg-type]
    assert "click" in POSITIVE_EVENTS and "impression" not in POSITIVE_EVENTS
