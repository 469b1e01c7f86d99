"""Backends chosen by configuration alone: embedded by default, PostgreSQL and Redis by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.experiments.store import ExperimentStore
from recops.serving.backends import open_event_log, open_experiment_store, open_online_state
from recops.serving.config import SettingsError, check_environment, load_settings
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.follower import LogFollower
from recops.serving.metrics import ServerMetrics
from recops.serving.settings import ServerSettings
from recops.serving.state import UserStateStore
from tests.serving.backends import postgres_server, postgres_url  # noqa: F401  (fixtures)


def test_the_defaults_are_embedded(tmp_path: Path) -> None:
    settings = ServerSettings(event_log_path=tmp_path / "events.sqlite3")
    assert settings.event_log_url is None and settings.state_url is None
    log = open_event_log(settings)
    store = open_experiment_store(settings)
    try:
        assert type(log) is SQLiteEventLog and type(store) is ExperimentStore
        state, follower = open_online_state(settings, log, lambda i: i, ServerMetrics())
        assert type(state) is UserStateStore and type(follower) is LogFollower
    finally:
        store.close()
        log.close()


def test_urls_come_from_the_environment_and_stay_out_of_reprs() -> None:
    settings = load_settings(
        environ={
            "RECOPS_EVENT_LOG_URL": "postgresql://app:s3cret@db:5432/recops",
            "RECOPS_STATE_URL": "redis://:s3cret@cache:6379/0",
            "RECOPS_STATE_TTL_S": "3600",
        }
    )
    assert settings.event_log_url == "postgresql://app:s3cret@db:5432/recops"
    assert settings.state_url == "redis://:s3cret@cache:6379/0"
    assert settings.state_ttl_s == 3600
    assert "s3cret" not in repr(settings)


def test_a_url_of_another_kind_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"RECOPS_EVENT_LOG_URL.*postgres"):
        load_settings(environ={"RECOPS_EVENT_LOG_URL": "mysql://db/recops"})
    with pytest.raises(SettingsError, match=r"RECOPS_STATE_URL.*redis"):
        load_settings(environ={"RECOPS_STATE_URL": "memcached://cache"})


def test_the_test_servers_variables_do_not_stop_a_server() -> None:
    check_environment(
        {"RECOPS_TEST_POSTGRES_URL": "postgresql://x", "RECOPS_TEST_REDIS_URL": "redis://x"}
    )


def test_a_postgresql_url_selects_it_for_the_log_and_the_experiments(
    postgres_url: str,  # noqa: F811
) -> None:
    from recops.experiments.store_postgres import PostgresExperimentStore
    from recops.serving.eventlog.postgres import PostgresEventLog

    settings = ServerSettings(event_log_url=postgres_url)
    log = open_event_log(settings)
    store = open_experiment_store(settings)
    try:
        assert isinstance(log, PostgresEventLog) and isinstance(store, PostgresExperimentStore)
    finally:
        store.close()
        log.close()


def test_a_redis_url_selects_the_shared_state_and_its_follower(tmp_path: Path) -> None:
    pytest.importorskip("redis", reason="the Redis state needs redis-py")
    from recops.serving.state_redis import RedisFollower, RedisUserState

    settings = ServerSettings(
        event_log_path=tmp_path / "events.sqlite3", state_url="redis://127.0.0.1:1/0"
    )
    metrics = ServerMetrics()
    log = open_event_log(settings)
    try:
        state, follower = open_online_state(settings, log, lambda i: i, metrics)
        assert isinstance(state, RedisUserState) and isinstance(follower, RedisFollower)
        assert state.ttl_s == settings.state_ttl_s
        assert b"recops_online_state_available" in metrics.render()
    finally:
        log.close()
