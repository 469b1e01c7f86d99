"""SQLite event log: durable group commits, reads, and a clear failure."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from recops.serving.eventlog import Event, SQLiteEventLog


def _events(n: int, user: str = "u") -> list[Event]:
    return [Event(user, f"i{j}", "click", 1.0, 1_700_000_000 + j) for j in range(n)]


def test_append_read_tail_count(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "log" / "events.sqlite3")
    try:
        assert log.append(_events(3)) == 3
        assert log.append([]) == 0
        ctx = Event("v", "i9", "impression", 0.0, 5, {"position": 2, "propensity": 0.25})
        log.append([ctx])
        assert log.count() == 4
        rows = log.read(after_id=2)
        assert [e.item_id for _, e in rows] == ["i2", "i9"]
        assert rows[-1][1].context == {"position": 2, "propensity": 0.25}
        assert [e.item_id for e in log.tail(2)] == ["i2", "i9"]
        assert log.tail(0) == []
    finally:
        log.close()


def test_wal_mode_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path)
    log.append(_events(10))
    log.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = SQLiteEventLog(path)
    assert reopened.count() == 10
    reopened.close()
    assert reopened.submit(_events(1)).exception() is not None


def test_concurrent_submitters_are_group_committed(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    futures = []
    lock = threading.Lock()

    def submit(worker: int) -> None:
        for _ in range(50):
            f = log.submit(_events(20, user=f"u{worker}"))
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(f.result(timeout=30) for f in futures) == 4 * 50 * 20
    assert log.count() == 4000
    log.close()


def test_storage_errors_reach_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE events")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        log.append(_events(1))
    log.close()


def test_parameters_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteEventLog(tmp_path / "a.db", synchronous="OFF")
    with pytest.raises(ValueError, match="max_batch_rows"):
        SQLiteEventLog(tmp_path / "a.db", max_batch_rows=0)
