"""SQLite event log: durable group commits, reads, and a clear failure."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from recops.serving.eventlog import (
    Assignment,
    Event,
    Exposure,
    KeyReuseError,
    Receipt,
    SQLiteEventLog,
    WriteKey,
)


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


def _exposure(request_id: str, experiment: str | None = "exp", variant: str = "a") -> Exposure:
    return Exposure(
        request_id=request_id,
        timestamp=1_700_000_000,
        unit="u1",
        model="news",
        version="1",
        policy={"kind": "greedy"},
        items=["i1", "i2"],
        propensities=[1.0, 0.5],
        scores=[2.0, 1.5],
        experiment=experiment,
        variant=variant,
        candidates=["i1", "i2", "i3"],
        candidate_scores=[2.0, 1.5, 0.1],
        context={"strategy": "personalized", "k": 2},
    )


def test_exposures_and_assignments_round_trip(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        first = Assignment("exp", "u1", "a", 1_700_000_000)
        assert log.submit_exposures([_exposure("r1")], [first]).result() == 1
        # A second assignment of the same unit is ignored: logged once.
        log.submit_exposures([_exposure("r2")], [Assignment("exp", "u1", "b", 1)]).result()
        log.submit_exposures([_exposure("r3", experiment=None)]).result()
        assert log.exposure_count() == 3 and log.exposure_count("exp") == 2
        rows = log.read_exposures(experiment="exp")
        assert [x.request_id for _, x in rows] == ["r1", "r2"]
        assert rows[0][1] == _exposure("r1")
        assert [x.request_id for _, x in log.read_exposures(after_id=rows[0][0])] == ["r2", "r3"]
        assert log.read_assignments("exp") == [first]
        # Request ids are unique: a second exposure with one fails loudly.
        with pytest.raises(sqlite3.IntegrityError):
            log.submit_exposures([_exposure("r1")]).result()
    finally:
        log.close()


def test_responses_are_the_events_with_a_request_id(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        log.append(_events(2))
        click = Event("u1", "i1", "click", 1.0, 7, {"request_id": "r1", "position": 0})
        log.append([click])
        (row,) = log.read_responses()
        assert row[1] == click and row[1].request_id == "r1"
        assert log.read()[-1][1].context == {"position": 0, "request_id": "r1"}
    finally:
        log.close()


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


def test_queued_exposures_wait_for_company_but_never_for_events(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3", exposure_delay_s=5.0)
    try:
        log.queue_exposures([_exposure("q1")], [Assignment("exp", "u1", "a", 1)])
        log.queue_exposures([_exposure("q2")])
        assert log.exposure_count() == 0  # held back to share a commit
        # An event write (the client waits for it) commits what was queued before it.
        log.append([Event("u1", "i1", "click", 1.0, 7, {"request_id": "q1"})])
        assert [x.request_id for _, x in log.read_exposures()] == ["q1", "q2"]
        assert len(log.read_assignments("exp")) == 1
    finally:
        log.close()
    assert log.dropped_exposures == 0
    log.queue_exposures([_exposure("late")])  # after close: counted, not raised
    assert log.dropped_exposures == 1


def test_queued_exposures_are_committed_within_the_delay(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3", exposure_delay_s=0.05)
    try:
        log.queue_exposures([_exposure("q1")])
        deadline = time.monotonic() + 5
        while log.exposure_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.exposure_count() == 1
    finally:
        log.close()


def test_a_failed_commit_of_queued_exposures_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path, exposure_delay_s=0.0)
    try:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE exposures")
        log.queue_exposures([_exposure("q1"), _exposure("q2")])
        deadline = time.monotonic() + 5
        while log.dropped_exposures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.dropped_exposures == 2
    finally:
        log.close()


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _keys(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_keyed_write_is_stored_once_and_replayed(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        key = WriteKey("k1", "fingerprint-a")
        # Back to back: the second may share the first one's group commit.
        first, second = log.submit_once(_events(3), key), log.submit_once(_events(3), key)
        assert first.result() == Receipt(accepted=3, duplicates=0, replayed=False)
        assert second.result() == Receipt(accepted=3, duplicates=0, replayed=True)
        assert log.submit_once(_events(3), key).result().replayed
        assert log.count() == 3
        with pytest.raises(KeyReuseError, match="k1"):
            log.submit_once(_events(1), WriteKey("k1", "fingerprint-b")).result()
        assert log.count() == 3
        unkeyed = log.submit_once(_events(2)).result()
        assert unkeyed == Receipt(accepted=2, duplicates=0, replayed=False)
    finally:
        log.close()


def test_keys_expire_after_the_window_and_are_purged(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    clock = _Clock()
    log = SQLiteEventLog(path, idempotency_window_s=60.0, clock=clock)
    try:
        for n in range(5):
            log.submit_once(_events(1), WriteKey(f"k{n}", "f")).result()
        assert log.submit_once(_events(1), WriteKey("k0", "f")).result().replayed
        clock.now += 61.0
        # Past the window the key is new again (and may come with another body).
        again = log.submit_once(_events(2), WriteKey("k0", "g")).result()
        assert not again.replayed and log.count() == 7
        # The expired keys are gone from disk: the table holds one window of keys.
        assert _keys(path, "request_keys") == 1
    finally:
        log.close()


def test_event_ids_are_stored_once_within_the_window(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    clock = _Clock()
    log = SQLiteEventLog(path, idempotency_window_s=60.0, clock=clock)

    def click(event_id: str | None, item: str = "i1") -> Event:
        context = None if event_id is None else {"event_id": event_id}
        return Event("u", item, "click", 1.0, 5, context)

    try:
        assert log.submit_once([click("a"), click("b")]).result().duplicates == 0
        # Re-batched retry: "a" again, twice, with a new "c" and an event without id.
        receipt = log.submit_once([click("a"), click("c"), click("a"), click(None)]).result()
        assert receipt == Receipt(accepted=4, duplicates=2, replayed=False, skipped=(0, 2))
        assert [e.context for _, e in log.read()] == [
            {"event_id": "a"},
            {"event_id": "b"},
            {"event_id": "c"},
            None,
        ]
        assert log.append([click("b")]) == 0, "append counts what it wrote"
        clock.now += 61.0
        assert log.append([click("b")]) == 1, "an id past the window is new"
        assert _keys(path, "event_keys") == 1
    finally:
        log.close()


def test_two_logs_on_one_file_share_the_keys(tmp_path: Path) -> None:
    # Two workers: each has its own log object (and writer) on the same file.
    path = tmp_path / "events.sqlite3"
    logs = [SQLiteEventLog(path), SQLiteEventLog(path)]
    try:
        futures = [log.submit_once(_events(2), WriteKey("shared", "f")) for log in logs * 5]
        receipts = [f.result(timeout=30) for f in futures]
        assert sum(not r.replayed for r in receipts) == 1
        assert logs[0].count() == 2
    finally:
        for log in logs:
            log.close()


def test_the_window_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="idempotency_window_s"):
        SQLiteEventLog(tmp_path / "a.db", idempotency_window_s=0.0)


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
