"""The supervisor's restart policy (exponential backoff, forgiven after a healthy run), and
its bookkeeping surviving a locked run folder."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from recops.serving.supervisor import RestartPolicy, _forget
from recops.serving.workers import WorkerGroup


def test_repeated_failures_back_off_exponentially_up_to_a_ceiling() -> None:
    policy = RestartPolicy(base_s=0.5, max_s=4.0, healthy_s=30.0)
    assert [policy.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    policy.ready_for(10.0)
    assert policy.failed() == 4.0, "ten seconds of service do not forgive the failures"
    policy.ready_for(30.0)
    assert policy.failed() == 0.5, "a healthy run does"


def test_the_policy_validates_its_waits() -> None:
    with pytest.raises(ValueError, match="0 < base_s <= max_s"):
        RestartPolicy(base_s=5.0, max_s=1.0)


def test_a_report_that_cannot_be_dropped_yet_is_dropped_at_a_later_check(tmp_path: Path) -> None:
    # Seen once in CI, right after a stopped worker was killed: control.sqlite3 stayed
    # locked, and the supervisor died on `database is locked`, leaving the server
    # without one.
    group = WorkerGroup(tmp_path, pid=1)
    for pid in (101, 102):
        WorkerGroup(tmp_path, pid=pid).report(0, "news/1", None)
    group._conn.execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(tmp_path / "control.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    reaped = {101, 102}
    _forget(group, reaped)  # no exception
    assert reaped == {101, 102} and len(group.workers(live_only=False)) == 2
    blocker.execute("COMMIT")
    _forget(group, reaped)
    assert reaped == set() and group.workers(live_only=False) == []


def test_the_supervisor_loop_does_not_block_on_a_released_lock(tmp_path: Path) -> None:
    group = WorkerGroup(tmp_path, pid=1)
    WorkerGroup(tmp_path, pid=7).report(0, None, None)
    blocker = sqlite3.connect(
        tmp_path / "control.sqlite3", isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.2, lambda: blocker.execute("COMMIT")).start()
    reaped = {7}
    _forget(group, reaped)  # waits out the short lock (the busy timeout), then drops it
    assert reaped == set()
