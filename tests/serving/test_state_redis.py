"""The online state in Redis: shared, bounded, idempotent in log order, and an outage served.

The outage tests need no Redis (they point at a port nothing listens on); the others
skip, saying why, without ``RECOPS_TEST_REDIS_URL``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

redis = pytest.importorskip("redis", reason="the Redis state needs redis-py")

from fastapi.testclient import TestClient  # noqa: E402

from recops.serving.app import create_app  # noqa: E402
from recops.serving.eventlog import Activity, Event, SQLiteEventLog  # noqa: E402
from recops.serving.process import free_port  # noqa: E402
from recops.serving.settings import ServerSettings  # noqa: E402
from recops.serving.state_label import STATE_HEADER  # noqa: E402
from recops.serving.state_redis import (  # noqa: E402
    RedisFollower,
    RedisUserState,
    StateUnavailableError,
)
from tests.serving.backends import redis_prefix, redis_server, redis_url  # noqa: E402, F401

from .conftest import START  # noqa: E402

#: Nothing listens there: connections are refused at once.
DOWN = "redis://127.0.0.1:1/0"


def _state(url: str, prefix: str, **kwargs: object) -> RedisUserState:
    return RedisUserState(url, prefix=prefix, **kwargs)  # type: ignore[arg-type]


def _rows(*events: tuple[str, str, int]) -> list[Activity]:
    """``(user, item, timestamp)`` clicks as log rows with ids 1, 2, ..."""
    return [(n, u, i, "click", t) for n, (u, i, t) in enumerate(events, start=1)]


def test_history_is_in_log_order_distinct_bounded_and_expires(redis_url: str) -> None:  # noqa: F811
    state = _state(redis_url, redis_prefix(), history_size=3, ttl_s=600)
    state.apply(_rows(("u", "a", 10), ("u", "b", 11), ("u", "a", 12), ("u", "c", 13)))
    state.apply([(5, "u", "d", "click", 14), (6, "u", "e", "impression", 15)])
    history = state.history("u")
    # "a" moved to its latest click; the oldest item ("b") went past the bound; the
    # impression is not interest.
    assert history.item_ids.tolist() == ["a", "c", "d"]
    assert history.timestamps.tolist() == [12, 13, 14]
    assert state.position() == 6, "the position moves past the impression too"
    assert 0 < state.client.ttl(f"{state.prefix}h:u") <= 600
    assert len(state.history("nobody")) == 0
    assert state.forget("u") and not state.forget("u")
    assert len(state.history("u")) == 0


def test_applying_again_or_out_of_order_changes_nothing(redis_url: str) -> None:  # noqa: F811
    rows = _rows(*((f"u{n % 3}", f"i{n % 7}", 100 + n) for n in range(40)))
    once = _state(redis_url, redis_prefix(), history_size=4)
    once.apply(rows)
    shuffled = _state(redis_url, redis_prefix(), history_size=4)
    # Two servers racing: overlapping batches, applied in another order, some twice.
    batches = [rows[k : k + 9] for k in range(0, 40, 7)]
    random.Random(0).shuffle(batches)
    for batch in batches + batches[:2]:
        shuffled.apply(batch)
    for user in ("u0", "u1", "u2"):
        a, b = once.history(user), shuffled.history(user)
        assert a.item_ids.tolist() == b.item_ids.tolist() and len(a) == 4
        assert a.timestamps.tolist() == b.timestamps.tolist()
    assert once.position() == shuffled.position() == 40


def test_only_known_items_take_space(redis_url: str) -> None:  # noqa: F811
    known = {"a": "a"}
    state = _state(redis_url, redis_prefix(), known_item=known.get)
    state.apply(_rows(("victim", "a", 1), ("attacker", "not-an-item", 2)))
    assert state.history("victim").item_ids.tolist() == ["a"]
    assert not state.client.exists(f"{state.prefix}h:attacker")
    with pytest.raises(TypeError, match="RedisFollower"):
        state.record("u", "a", 1)


def test_a_click_acknowledged_by_one_server_is_read_by_the_other(
    redis_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = redis_prefix()
    path = tmp_path / "events.sqlite3"
    logs = [SQLiteEventLog(path), SQLiteEventLog(path)]  # two servers, one log
    states = [_state(redis_url, prefix), _state(redis_url, prefix)]
    a, b = (RedisFollower(log, state) for log, state in zip(logs, states, strict=True))
    try:
        assert a.warm(100) == 0 and b.warm(100) == 0
        logs[0].append([Event("u", "i1", "click", 1.0, 10)])
        assert a.catch_up() == 1  # what the events route does before it replies
        # Server B reads it without following anything.
        assert states[1].history("u").item_ids.tolist() == ["i1"]
        # And its own catch-up starts after the shared position: nothing to apply again.
        assert b.catch_up() == 0 and b.position == 1
        # Polls (on requests, with several workers) catch up at most once per interval.
        logs[1].append([Event("v", "i2", "click", 1.0, 11)])  # a server died before Redis
        b.poll_interval_s = 3600.0
        assert b.poll() == 1 and states[0].history("v").item_ids.tolist() == ["i2"]
        logs[1].append([Event("v", "i3", "click", 1.0, 12)])
        assert b.poll() == 0, "too soon after the last one"
        b.poll_interval_s = 0.0
        assert b.poll() == 1, "the change seen before is not forgotten"
    finally:
        for log in logs:
            log.close()


def test_a_redis_that_lost_its_data_is_refilled_from_the_log(
    redis_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    state = _state(redis_url, redis_prefix())
    follower = RedisFollower(log, state)
    try:
        log.append([Event(f"u{n}", "i", "click", 1.0, n) for n in range(10)])
        assert follower.warm(3) == 3  # only the last three replayed
        assert [len(state.history(f"u{n}")) for n in range(10)] == [0] * 7 + [1] * 3
        for key in state.client.scan_iter(match=f"{state.prefix}*"):
            state.client.delete(key)  # a restart without persistence, a flush
        log.append([Event("late", "i", "click", 1.0, 99)])
        assert follower.catch_up() == 4  # the last three again, and the new one
        assert len(state.history("u9")) == 1 and len(state.history("late")) == 1
    finally:
        log.close()


def test_an_unreachable_redis_serves_empty_histories_fast_and_counts_them(tmp_path: Path) -> None:
    state = RedisUserState(DOWN, timeout_s=0.5, retry_s=30.0)
    start = time.perf_counter()
    assert len(state.history("u")) == 0
    assert state.failures == 1 and not state.available
    # The breaker is open: the next requests do not even try.
    for _ in range(100):
        assert len(state.history("u")) == 0
    assert time.perf_counter() - start < 1.0
    assert state.failures == 1 and state.unavailable_requests == 101
    metrics = {m.name: m.samples[0].value for m in state.collect()}
    assert metrics["recops_online_state_available"] == 0.0
    assert metrics["recops_online_state_unavailable_requests"] == 101
    with pytest.raises(StateUnavailableError):
        state.apply(_rows(("u", "a", 1)))
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        log.append([Event("u", "i", "click", 1.0, 1)])
        follower = RedisFollower(log, state)
        # The server starts and events are stored; Redis gets them when it is back.
        assert follower.warm(10) == 0 and follower.catch_up() == 0
        assert follower.position == 0
    finally:
        log.close()


def test_parameters_are_validated() -> None:
    for bad, match in (
        ({"history_size": 0}, "history_size"),
        ({"ttl_s": 0}, "ttl_s"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"retry_s": 61.0}, "retry_s"),
    ):
        with pytest.raises(ValueError, match=match):
            RedisUserState(DOWN, **bad)  # type: ignore[arg-type]


def test_the_server_answers_while_redis_is_down_and_says_so(settings: ServerSettings) -> None:
    down = settings.model_copy(update={"state_url": DOWN, "state_timeout_ms": 200.0})
    body = {"user_id": "u3", "k": 5, "now": START + 30 * 86400}
    with TestClient(create_app(down)) as client:
        assert client.get("/readyz").status_code == 200
        reply = client.post("/v1/recommend", json=body)
        assert reply.status_code == 200
        assert reply.headers[STATE_HEADER] == "unavailable"
        # A user the model was trained on is still served from the stored history.
        assert reply.json()["strategy"] == "personalized"
        # Events are still stored and acknowledged.
        click = {"user_id": "u3", "item_id": reply.json()["items"][0], "event": "click"}
        assert client.post("/v1/events", json={"events": [click]}).status_code == 200
        assert client.post("/v1/similar", json={"item_id": "i1", "k": 3}).status_code == 200
        metrics = client.get("/metrics").text
        assert "recops_online_state_available 0.0" in metrics
        assert "recops_online_state_unavailable_requests_total 1.0" in metrics


def test_the_embedded_server_sends_no_label(settings: ServerSettings) -> None:
    body = {"user_id": "u3", "k": 5, "now": START + 30 * 86400}
    with TestClient(create_app(settings)) as client:
        assert STATE_HEADER not in client.post("/v1/recommend", json=body).headers


@pytest.fixture
def own_redis(
    redis_server: str,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A Redis of the test's own, which it stops and starts again (an outage)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for(url)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"redis at {url} did not start"
            time.sleep(0.05)


def test_an_outage_and_a_restart_lose_no_acknowledged_event(
    own_redis: tuple[str, subprocess.Popen],
    tmp_path: Path,
) -> None:
    url, process = own_redis
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    state = RedisUserState(url, timeout_s=0.2, retry_s=0.1)
    follower = RedisFollower(log, state)
    try:
        follower.warm(1000)
        log.append([Event("u", "before", "click", 1.0, 1)])
        assert follower.catch_up() == 1
        process.terminate()
        process.wait(timeout=10)
        log.append([Event("u", "during", "click", 1.0, 2)])  # acknowledged meanwhile
        assert follower.catch_up() == 0
        assert len(state.history("u")) == 0  # served without the live history
        # Redis is back, empty (no persistence): the log refills it.
        restarted = subprocess.Popen(process.args, stdout=subprocess.DEVNULL)
        try:
            _wait_for(url)
            time.sleep(0.15)  # the breaker's retry_s
            assert follower.catch_up() == 2
            assert state.history("u").item_ids.tolist() == ["before", "during"]
        finally:
            restarted.terminate()
            restarted.wait(timeout=10)
    finally:
        log.close()
