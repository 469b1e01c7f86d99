"""The shared write transaction: committed whole, rolled back whole, the write lock taken first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recops.sqlite import immediate


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return conn


def test_commits_on_success_and_rolls_back_on_any_exception(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "db.sqlite3")
    with immediate(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(KeyboardInterrupt), immediate(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise KeyboardInterrupt
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert not conn.in_transaction


def test_the_write_lock_is_taken_at_begin(tmp_path: Path) -> None:
    first, second = _connect(tmp_path / "db.sqlite3"), _connect(tmp_path / "db.sqlite3")
    # Before any write of the first, a second writer cannot even begin.
    with (
        immediate(first),
        pytest.raises(sqlite3.OperationalError, match="locked"),
        immediate(second),
    ):
        pass
    with immediate(second):
        second.execute("INSERT INTO t VALUES (3)")
