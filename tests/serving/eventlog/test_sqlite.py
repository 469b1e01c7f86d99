"""What only the SQLite event log has: WAL mode, its pragmas, migrations of older files.

The contract every backend keeps is tested in ``test_eventlog_contract.py``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from recops.serving.eventlog import Event, SQLiteEventLog


def _events(n: int, user: str = "u") -> list[Event]:
    return [Event(user, f"i{j}", "click", 1.0, 1_700_000_000 + j) for j in range(n)]


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


def test_unwaited_exposure_commits_skip_the_fsync_and_waited_ones_do_not(tmp_path: Path) -> None:
    from tests.serving.eventlog.test_contract import _exposure

    log = SQLiteEventLog(tmp_path / "events.sqlite3", exposure_delay_s=0.0, exposure_flush_s=60)

    def synchronous() -> int:
        return int(log._conn.execute("PRAGMA synchronous").fetchone()[0])

    log.queue_exposures([_exposure("q1")])
    deadline = time.monotonic() + 5
    while log.exposure_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert synchronous() == 1  # NORMAL: survives the process, flushed by the next write
    log.append(_events(1))
    assert synchronous() == 2  # FULL again for an acknowledged write
    log.close()
    reopened = SQLiteEventLog(tmp_path / "events.sqlite3")
    assert reopened.exposure_count() == 1 and reopened.count() == 1


def test_parameters_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteEventLog(tmp_path / "a.db", synchronous="OFF")
    with pytest.raises(ValueError, match="max_batch_rows"):
        SQLiteEventLog(tmp_path / "a.db", max_batch_rows=0)


def test_a_log_written_before_request_ids_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, item_id TEXT "
            "NOT NULL, event TEXT NOT NULL, value REAL NOT NULL, timestamp INTEGER NOT NULL, "
            "context TEXT)"
        )
        conn.execute(
            "INSERT INTO events (user_id, item_id, event, value, timestamp, context) "
            "VALUES ('u', 'i', 'click', 1.0, 5, '{\"position\": 1}')"
        )
    log = SQLiteEventLog(path)
    try:
        assert log.read()[0][1].context == {"position": 1}
        log.append([Event("u", "i", "click", 1.0, 6, {"request_id": "r9"})])
        assert [e.request_id for _, e in log.read_responses()] == ["r9"]
    finally:
        log.close()


def test_a_log_without_event_ids_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    SQLiteEventLog(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE events DROP COLUMN event_id")
    log = SQLiteEventLog(path)
    try:
        log.append([Event("u", "i", "click", 1.0, 6, {"event_id": "e1"})])
        assert log.read()[0][1].context == {"event_id": "e1"}
    finally:
        log.close()
