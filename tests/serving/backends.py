"""Real PostgreSQL and Redis servers for the backend tests, or a skip that says why.

``.ci/run`` starts both (``.ci/backends.sh``) and sets ``RECOPS_TEST_POSTGRES_URL``
and ``RECOPS_TEST_REDIS_URL``; elsewhere the tests that need them skip. Each test
gets a schema of its own (dropped afterwards) and a Redis key prefix of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from recops.serving.eventlog import GroupCommitLog, SQLiteEventLog

POSTGRES_ENV = "RECOPS_TEST_POSTGRES_URL"
REDIS_ENV = "RECOPS_TEST_REDIS_URL"


def _server_url(variable: str, what: str, client: str, probe: Callable[[str], None]) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set: no {what} to test against (.ci/run starts one)")
    pytest.importorskip(client, reason=f"the {what} tests need the {client} package")
    try:
        probe(url)
    except Exception as exc:  # any failure to reach it is a reason to skip, said
        pytest.skip(f"{what} at {variable} is unreachable: {exc}")
    return url


def _probe_postgres(url: str) -> None:
    import psycopg

    psycopg.connect(url, connect_timeout=3).close()


def _probe_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL (skips when there is none)."""
    return _server_url(POSTGRES_ENV, "PostgreSQL server", "psycopg", _probe_postgres)


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The test Redis server's URL (skips when there is none)."""
    return _server_url(REDIS_ENV, "Redis server", "redis", _probe_redis)


def with_schema(url: str, schema: str) -> str:
    """``url`` with its tables in ``schema`` (libpq's ``options=-csearch_path=``)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose tables live in a new schema, dropped after the test."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(postgres_server, schema)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The Redis URL; the keys under the test's prefix (:func:`redis_prefix`) are deleted after."""
    yield redis_server
    import redis

    client = redis.Redis.from_url(redis_server)
    try:
        for key in client.scan_iter(match="recops-test:*", count=1000):
            client.delete(key)
    finally:
        client.close()


def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"recops-test:{uuid.uuid4().hex[:12]}:"


@dataclass
class LogBackend:
    """One storage of an event log, opened as often as a test has "processes".

    Parameters
    ----------
    name:
        ``sqlite`` or ``postgres``.
    target:
        The SQLite file, or the PostgreSQL URL.
    """

    name: str
    target: Any
    opened: list[GroupCommitLog] = field(default_factory=list)

    def open(self, **kwargs: Any) -> GroupCommitLog:
        """A new log object on the same storage (a worker process of its own)."""
        log: GroupCommitLog
        if self.name == "sqlite":
            log = SQLiteEventLog(self.target, **kwargs)
        else:
            from recops.serving.eventlog.postgres import PostgresEventLog

            log = PostgresEventLog(self.target, **kwargs)
        self.opened.append(log)
        return log

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one SQL statement on a connection of its own (as another program would)."""
        if self.name == "sqlite":
            import sqlite3

            with sqlite3.connect(self.target) as conn:
                return conn.execute(statement).fetchall()
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def rows(self, table: str) -> int:
        """Rows in ``table``."""
        return int(self.execute(f"SELECT COUNT(*) FROM {table}")[0][0])

    @property
    def integrity_error(self) -> type[Exception]:
        """What a broken constraint raises."""
        if self.name == "sqlite":
            import sqlite3

            return sqlite3.IntegrityError
        import psycopg

        return psycopg.IntegrityError

    def close(self) -> None:
        for log in self.opened:
            log.close()


def log_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> LogBackend:
    """A fresh storage of the ``name`` backend (PostgreSQL: a new schema)."""
    if name == "sqlite":
        return LogBackend(name, tmp_path / "events.sqlite3")
    return LogBackend(name, request.getfixturevalue("postgres_url"))
