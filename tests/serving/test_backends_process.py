"""Two ``recops serve`` processes on PostgreSQL + Redis: stateless replicas behind a balancer.

They give the same answers, and each sees the other's events at once: a click
acknowledged by one changes the next recommendation the other serves. And the workers
of one ``--workers 2`` server on PostgreSQL with in-process state, each following the
log, see each other's events by the next request. Skips, saying why, without
``RECOPS_TEST_POSTGRES_URL`` and ``RECOPS_TEST_REDIS_URL``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

redis = pytest.importorskip("redis", reason="the Redis state needs redis-py")
pytest.importorskip("psycopg", reason="the PostgreSQL log needs psycopg")


from recops.serving.eventlog.postgres import PostgresEventLog  # noqa: E402
from recops.serving.process import ServerProcess  # noqa: E402
from tests.serving.backends import (  # noqa: E402, F401  (fixtures)
    postgres_server,
    postgres_url,
    redis_server,
)

from .conftest import START, make_repository  # noqa: E402

READY_TIMEOUT = 120.0
#: A database of its own: the servers write under the default key prefix.
REDIS_DB = 3


@pytest.fixture
def state_url(redis_server: str) -> Iterator[str]:  # noqa: F811
    base = redis_server.rsplit("/", 1)[0] if redis_server.count("/") > 2 else redis_server
    url = f"{base}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def replicas(
    tmp_path: Path,
    trained_artifact: Path,
    postgres_url: str,  # noqa: F811
    state_url: str,
) -> Iterator[list[ServerProcess]]:
    repo = make_repository(tmp_path / "models", trained_artifact)
    env = {"RECOPS_EVENT_LOG_URL": postgres_url, "RECOPS_STATE_URL": state_url}
    servers = [ServerProcess(repo, tmp_path / f"unused-{n}.sqlite3", env=env) for n in range(2)]
    try:
        for server in servers:
            server.start(READY_TIMEOUT)
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_replicas_answer_alike_and_see_each_others_events(
    replicas: list[ServerProcess],
    postgres_url: str,  # noqa: F811
) -> None:
    a, b = (httpx.Client(base_url=s.url, timeout=10.0) for s in replicas)
    now = START + 30 * 86400
    ask = {"user_id": "newcomer", "k": 10, "now": now}
    try:
        first = [c.post("/v1/recommend", json=ask).json() for c in (a, b)]
        assert first[0]["items"] == first[1]["items"]
        assert first[0]["strategy"] == "cold_start"
        # Clicks through A, acknowledged; B's very next answer is built on them.
        clicks = [
            {"user_id": "newcomer", "item_id": item, "event": "click", "timestamp": now}
            for item in first[0]["items"][3:6]
        ]
        assert a.post("/v1/events", json={"events": clicks}).json()["accepted"] == 3
        after = b.post("/v1/recommend", json=ask).json()
        assert after["strategy"] == "personalized"
        assert after["items"] != first[1]["items"]
        assert a.post("/v1/recommend", json=ask).json()["items"] == after["items"]
        # And the other way round: B's event, A's answer.
        more = {**clicks[0], "item_id": after["items"][0]}
        assert b.post("/v1/events", json={"events": [more]}).status_code == 200
        again = [c.post("/v1/recommend", json=ask).json()["items"] for c in (a, b)]
        assert again[0] == again[1] != after["items"]
        # Both wrote to the one log: the events, and each served slate as an exposure
        # (queued ones within the 50 ms of a group commit).
        log = PostgresEventLog(postgres_url)
        try:
            assert log.count() == 4
            deadline = time.monotonic() + 5
            while log.exposure_count() < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert log.exposure_count() == 6
        finally:
            log.close()
    finally:
        a.close()
        b.close()


def test_workers_on_postgresql_see_each_others_events_at_once(
    tmp_path: Path,
    trained_artifact: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    # In-process state: each worker follows the log, told of new events by NOTIFY.
    repo = make_repository(tmp_path / "models", trained_artifact)
    env = {"RECOPS_EVENT_LOG_URL": postgres_url}
    now = START + 30 * 86400
    server = ServerProcess(repo, tmp_path / "unused.sqlite3", ("--workers", "2"), env=env)
    with server.start(READY_TIMEOUT):
        for n in range(10):
            ask = {"user_id": f"newcomer{n}", "k": 5, "now": now}
            # A new connection per request: the kernel spreads them over the workers.
            first = httpx.post(f"{server.url}/v1/recommend", json=ask, timeout=10.0).json()
            click = {"user_id": ask["user_id"], "item_id": first["items"][0], "event": "click"}
            events = {"events": [{**click, "timestamp": now}]}
            assert httpx.post(f"{server.url}/v1/events", json=events, timeout=10.0).is_success
            after = httpx.post(f"{server.url}/v1/recommend", json=ask, timeout=10.0).json()
            assert after["strategy"] == "personalized", f"click {n} not seen by the next reply"
