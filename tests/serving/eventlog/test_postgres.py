"""What only the PostgreSQL event log has: commit-ordered ids across writers, reconnection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL backend needs psycopg")

from recops.postgres import redact  # noqa: E402
from recops.serving.eventlog import Event  # noqa: E402
from recops.serving.eventlog.postgres import PostgresEventLog  # noqa: E402
from tests.serving.backends import postgres_server, postgres_url  # noqa: E402, F401  (fixtures)


@pytest.fixture
def logs(postgres_url: str) -> Iterator[list[PostgresEventLog]]:  # noqa: F811
    opened: list[PostgresEventLog] = []
    yield opened
    for log in opened:
        log.close()


def _open(logs: list[PostgresEventLog], url: str) -> PostgresEventLog:
    log = PostgresEventLog(url)
    logs.append(log)
    return log


def test_a_follower_never_skips_an_event_of_concurrent_writers(
    logs: list[PostgresEventLog],
    postgres_url: str,  # noqa: F811
) -> None:
    # Three "processes" write at once while a fourth follows. With ids from a plain
    # sequence, a transaction that took a lower id could commit after a higher one
    # was read, and the follower would step over it for good.
    writers = [_open(logs, postgres_url) for _ in range(3)]
    follower = _open(logs, postgres_url)
    per_thread, threads_per_log = 60, 2
    done = threading.Event()
    seen: list[int] = []
    gaps: list[tuple[int, int]] = []

    def follow() -> None:
        position = 0
        while True:
            finished = done.is_set()
            for row in follower.activity(position, limit=500):
                if row[0] != position + 1:
                    gaps.append((position, row[0]))
                position = row[0]
                seen.append(row[0])
            if finished:
                return

    def write(log: PostgresEventLog, worker: int) -> None:
        for n in range(per_thread):
            log.append([Event(f"u{worker}", f"i{n}", "click", 1.0, n)] * (1 + n % 4))

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [
        threading.Thread(target=write, args=(log, 10 * w + t))
        for w, log in enumerate(writers)
        for t in range(threads_per_log)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    total = len(writers) * threads_per_log * sum(1 + n % 4 for n in range(per_thread))
    assert gaps == []
    assert seen == list(range(1, total + 1))


def test_the_writer_reconnects_after_its_connection_breaks(
    logs: list[PostgresEventLog],
    postgres_url: str,  # noqa: F811
) -> None:
    log = _open(logs, postgres_url)
    log.append([Event("u", "i", "click", 1.0, 1)])
    conn = log._writer_conn.get()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    # The write that meets the broken connection fails (it was not acknowledged) ...
    with pytest.raises(psycopg.OperationalError):
        log.append([Event("u", "i", "click", 1.0, 2)])
    # ... and the next one opens a new connection.
    assert log.append([Event("u", "i", "click", 1.0, 3)]) == 1
    assert [e.timestamp for _, e in log.read()] == [1, 3]


def test_a_broken_watch_says_changed_and_recovers(
    logs: list[PostgresEventLog],
    postgres_url: str,  # noqa: F811
) -> None:
    log = _open(logs, postgres_url)
    assert log.changed() and not log.changed()
    pid = log._watch.get().info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # It cannot tell (commits may have come meanwhile): True, then it listens again.
    deadline = time.monotonic() + 5
    while not log.changed():
        assert time.monotonic() < deadline, "the closed watch was not noticed"
        time.sleep(0.01)
    assert log.last_id() == 0
    assert log.changed(), "a new connection may have missed notifications"
    assert not log.changed()


def test_a_bad_url_fails_in_the_caller_and_passwords_stay_out_of_messages() -> None:
    with pytest.raises(psycopg.OperationalError):
        PostgresEventLog("postgresql://nobody:secret@127.0.0.1:1/none", connect_timeout_s=1)
    where = redact("postgresql://app:s3cret@db.example:5433/recops?sslmode=require")
    assert where == "postgresql://app@db.example:5433/recops"
