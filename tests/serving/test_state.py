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


def test_the_state_is_bounded_by_bytes_and_the_estimate_holds() -> None:
    import tracemalloc

    from recops.serving.state import user_bytes

    items = [f"i{j}" for j in range(100)]
    budget = 2 * 1024**2
    tracemalloc.start()
    known = {item: item for item in items}
    store = UserStateStore(history_size=50, max_bytes=budget, known_item=known.get)
    # The flood: new 200-character user ids, one event each, far beyond the budget.
    store.record_many((f"{n:0200d}", items[n % 100], n) for n in range(20_000))
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert store.bytes <= budget and store.evicted > 0
    assert len(store) == store.bytes // user_bytes("x" * 200, 1)
    assert held <= budget * 1.1, f"the estimate is too low: {held} bytes held"
    # Full histories: the estimate is close at 50 items.
    full = UserStateStore(history_size=50)
    tracemalloc.start()
    full.record_many(
        (f"user{u}", items[j], 1_700_000_000 + j) for u in range(200) for j in range(50)
    )
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 0.8 * held <= full.bytes <= 1.3 * held


def test_events_on_unknown_items_take_no_space_and_known_ids_are_shared() -> None:
    catalog = {"a": "a", "b": "b"}
    store = UserStateStore(known_item=catalog.get)
    store.record_many([("victim", "a", 1), ("attacker", "zz-not-an-item", 2)])
    assert len(store) == 1 and len(store.history("attacker")) == 0
    assert store.history("victim").item_ids[0] is catalog["a"], "the model's own string is kept"


def test_who_is_evicted_first_is_the_least_recently_active() -> None:
    from recops.serving.state import user_bytes

    store = UserStateStore(history_size=2, max_bytes=4 * user_bytes("uX", 2) + 100)
    for user in ("u1", "u2", "u3", "u4"):
        store.record_many([(user, "a", 1), (user, "b", 2)])
    store.record("u1", "c", 3)  # u1 active again: u2 is now the least recent
    store.record("u5", "a", 4)
    assert len(store.history("u2")) == 0 and len(store.history("u1")) == 2
    before = store.bytes
    assert store.forget("u1") and store.bytes == before - user_bytes("u1", 2)
    with pytest.raises(ValueError, match="`max_bytes` must be an int of at least"):
        UserStateStore(max_bytes=100)
