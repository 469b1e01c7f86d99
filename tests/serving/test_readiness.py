"""``/readyz`` follows whether the event log takes writes, SQLite or PostgreSQL, in bounded time."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from fastapi.testclient import TestClient

from recops.serving import health
from recops.serving.app import create_app
from recops.serving.eventlog import EventLog
from recops.serving.health import EventLogProbe
from recops.serving.settings import ServerSettings
from tests.serving.backends import postgres_server  # noqa: F401  (fixture)

from .fakes import load_fake, write_fake


class _HangingLog:
    """A log whose write probe hangs until released (a database that stopped answering)."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def write_problem(self) -> str | None:
        self.calls += 1
        self.release.wait(10)
        return None


def test_a_probe_that_hangs_is_reported_in_bounded_time_and_never_piles_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "PROBE_S", 0.05)
    log = _HangingLog()
    probe = EventLogProbe(cast(EventLog, log), timeout_s=0.2)

    async def scenario() -> list[tuple[str | None, float]]:
        answers = []
        for _ in range(4):
            start = time.monotonic()
            answers.append((await probe.problem(), time.monotonic() - start))
            await asyncio.sleep(0.06)
        log.release.set()
        await asyncio.sleep(0.1)  # the hung probe returns
        answers.append((await probe.problem(), 0.0))
        return answers

    answers = asyncio.run(scenario())
    first, *hung, back = answers
    assert first[0] is not None and "no answer to the write probe within 0.2 s" in first[0]
    assert first[1] < 1.0
    # While it hangs, /readyz answers at once, and no second probe is started.
    assert all(p is not None and "no answer" in p and s < 0.05 for p, s in hung), hung
    assert back[0] is None
    assert log.calls == 2


def test_a_probe_answer_is_reused_for_a_second() -> None:
    log = _HangingLog()
    log.release.set()
    probe = EventLogProbe(cast(EventLog, log))

    async def poll() -> None:
        for _ in range(20):
            assert await probe.problem() is None

    asyncio.run(poll())
    assert log.calls == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_postgresql_is_a_reason_without_the_password() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL backend needs psycopg")
    from recops.serving.eventlog.postgres import WriteProbe

    probe = WriteProbe(f"postgresql://app:s3cret@127.0.0.1:{_closed_port()}/recops")
    start = time.monotonic()
    problem = probe.problem()
    assert time.monotonic() - start < 3
    assert problem is not None and "127.0.0.1" in problem and "refused" in problem.lower()
    assert "s3cret" not in problem


def test_a_postgresql_that_accepts_but_never_answers_times_out() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL backend needs psycopg")
    from recops.serving.eventlog.postgres import WriteProbe

    with socket.socket() as silent:  # listens, accepts (the kernel does), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        probe = WriteProbe(f"postgresql://app@127.0.0.1:{port}/recops", timeout_s=2.0)
        start = time.monotonic()
        problem = probe.problem()
        took = time.monotonic() - start
    assert problem is not None and "timeout" in problem.lower(), problem
    assert took < health.PROBE_TIMEOUT_S, f"took {took:.1f} s"


@pytest.fixture
def own_database(postgres_server: str) -> Iterator[str]:  # noqa: F811
    """The URL of a database of the test's own, which it may close to connections."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield make_conninfo(postgres_server, dbname=name)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_readiness_follows_a_postgresql_event_log(
    tmp_path: Path,
    own_database: str,
    postgres_server: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    from recops.serving.eventlog.postgres import PostgresEventLog

    monkeypatch.setattr(health, "PROBE_S", 0.05)
    write_fake(tmp_path / "models" / "news" / "1", seed=1)
    settings = ServerSettings(
        model_repository=tmp_path / "models",
        event_log_path=tmp_path / "events.sqlite3",  # the experiment store's
    )
    database = psycopg.conninfo.conninfo_to_dict(own_database)["dbname"]
    log = PostgresEventLog(own_database)
    with (
        TestClient(create_app(settings, loader=load_fake, event_log=log)) as client,
        psycopg.connect(postgres_server, autocommit=True) as admin,
    ):
        assert client.get("/readyz").status_code == 200
        # The database goes away for this server: no connection opens, those open break.
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        time.sleep(0.1)
        down = client.get("/readyz")
        assert down.status_code == 503, down.text
        detail = down.json()["detail"]
        assert "event log cannot take writes" in detail and "not currently accepting" in detail
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        time.sleep(0.1)
        back = client.get("/readyz")
        assert back.status_code == 200, back.text
        # A standby, or a database set read-only, is not ready either.
        admin.execute(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        time.sleep(0.1)
        read_only = client.get("/readyz")
        assert read_only.status_code == 503 and "read-only" in read_only.json()["detail"]
