"""The event log's contract, on every backend: SQLite, and PostgreSQL when a server is there.

Durable group commits, reads in id order, exposures queued and batched, assignments
once, idempotency keys and event ids, storage errors that reach the caller, and
followers in other processes that see every event once. What only one backend has
(SQLite's WAL mode and migrations, PostgreSQL's commit order under concurrent
writers) is tested beside it (``test_sqlite.py``, ``test_postgres.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recops.serving.eventlog import (
    Assignment,
    Event,
    Exposure,
    KeyReuseError,
    Receipt,
    WriteKey,
)
from recops.serving.follower import LogFollower
from recops.serving.state import UserStateStore
from tests.serving.backends import (  # noqa: F401  (fixtures)
    LogBackend,
    log_backend,
    postgres_server,
    postgres_url,
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogBackend]:
    store = log_backend(request.param, tmp_path, request)
    yield store
    store.close()


def _events(n: int, user: str = "u") -> list[Event]:
    return [Event(user, f"i{j}", "click", 1.0, 1_700_000_000 + j) for j in range(n)]


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


def _eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_append_read_tail_count(backend: LogBackend) -> None:
    log = backend.open()
    assert log.append(_events(3)) == 3
    assert log.append([]) == 0
    ctx = Event("v", "i9", "impression", 0.0, 5, {"position": 2, "propensity": 0.25})
    log.append([ctx])
    assert log.count() == 4 and log.last_id() == 4
    rows = log.read(after_id=2)
    assert [e.item_id for _, e in rows] == ["i2", "i9"]
    assert rows[-1][1].context == {"position": 2, "propensity": 0.25}
    assert [e.item_id for e in log.tail(2)] == ["i2", "i9"]
    assert log.tail(0) == []
    assert [r[0] for r in log.activity(0, limit=2)] == [1, 2]
    assert log.activity(3) == [(4, "v", "i9", "impression", 5)]


def test_a_closed_log_refuses_writes_and_a_reopened_one_has_them(backend: LogBackend) -> None:
    log = backend.open()
    log.append(_events(10))
    log.close()
    log.close()  # twice is fine
    assert log.submit(_events(1)).exception() is not None
    assert backend.open().count() == 10


def test_concurrent_submitters_are_group_committed(backend: LogBackend) -> None:
    log = backend.open()
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
    # Ids are the positions in commit order: 1..n, no gap.
    assert [r[0] for r in log.activity(0, limit=5000)] == list(range(1, 4001))


def test_storage_errors_reach_the_caller(backend: LogBackend) -> None:
    log = backend.open()
    backend.execute("DROP TABLE events")
    with pytest.raises(Exception, match="events"):
        log.append(_events(1))
    # Exposures still work: one failed write does not break the writer.
    assert log.submit_exposures([_exposure("r1")]).result() == 1


def test_parameters_are_validated(backend: LogBackend) -> None:
    for bad, match in (
        ({"max_batch_rows": 0}, "max_batch_rows"),
        ({"idempotency_window_s": 0.0}, "idempotency_window_s"),
        ({"exposure_delay_s": 11.0}, "exposure_delay_s"),
        ({"exposure_flush_s": -1.0}, "exposure_flush_s"),
    ):
        with pytest.raises(ValueError, match=match):
            backend.open(**bad)


def test_exposures_and_assignments_round_trip(backend: LogBackend) -> None:
    log = backend.open()
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
    with pytest.raises(backend.integrity_error):
        log.submit_exposures([_exposure("r1")]).result()


def test_assignments_keep_the_order_they_were_logged(backend: LogBackend) -> None:
    logs = [backend.open(), backend.open()]  # two workers
    for n in range(6):
        unit = f"u{n}"
        again = Assignment("exp", unit, "b", n)
        logs[n % 2].submit_exposures([], [Assignment("exp", unit, "a", n), again]).result()
    assigned = logs[0].read_assignments("exp")
    assert [(a.unit, a.variant) for a in assigned] == [(f"u{n}", "a") for n in range(6)]


def test_responses_are_the_events_with_a_request_id(backend: LogBackend) -> None:
    log = backend.open()
    log.append(_events(2))
    click = Event("u1", "i1", "click", 1.0, 7, {"request_id": "r1", "position": 0})
    log.append([click])
    (row,) = log.read_responses()
    assert row[1] == click and row[1].request_id == "r1"
    assert log.read()[-1][1].context == {"position": 0, "request_id": "r1"}
    assert log.read_responses(after_id=row[0]) == []


def test_queued_exposures_wait_for_company_but_never_for_events(backend: LogBackend) -> None:
    log = backend.open(exposure_delay_s=5.0)
    log.queue_exposures([_exposure("q1")], [Assignment("exp", "u1", "a", 1)])
    log.queue_exposures([_exposure("q2")])
    assert log.exposure_count() == 0  # held back to share a commit
    # An event write (the client waits for it) commits what was queued before it.
    log.append([Event("u1", "i1", "click", 1.0, 7, {"request_id": "q1"})])
    assert [x.request_id for _, x in log.read_exposures()] == ["q1", "q2"]
    assert len(log.read_assignments("exp")) == 1
    log.close()
    assert log.dropped_exposures == 0
    log.queue_exposures([_exposure("late")])  # after close: counted, not raised
    assert log.dropped_exposures == 1


def test_many_queued_exposures_keep_their_order_across_statements(backend: LogBackend) -> None:
    log = backend.open(exposure_delay_s=5.0)
    names = [f"q{n}" for n in range(203)]  # 3 x 64 + 8 + 2 + 1 rows: every statement size
    for name in names:
        log.queue_exposures([_exposure(name)])
    log.append(_events(1))  # commits them with it
    rows = log.read_exposures()
    assert [x.request_id for _, x in rows] == names
    assert [row_id for row_id, _ in rows] == list(range(1, 204))
    assert rows[100][1] == _exposure("q100")


def test_only_commits_someone_waits_for_or_due_are_flushed(backend: LogBackend) -> None:
    log = backend.open(exposure_delay_s=0.0, exposure_flush_s=60.0)
    flushed: list[bool] = []
    write = log._write

    def spy(batch, now, cutoff, durable):  # type: ignore[no-untyped-def]
        flushed.append(durable)
        return write(batch, now, cutoff, durable)

    log._write = spy  # type: ignore[method-assign]
    log.queue_exposures([_exposure("q1")])
    assert _eventually(lambda: log.exposure_count() == 1)
    log.append(_events(1))
    log.submit_exposures([_exposure("s1")]).result()
    assert flushed == [False, True, True]
    # With no acknowledged write for `exposure_flush_s`, queued exposures are flushed.
    log.exposure_flush_s = 0.0
    log.queue_exposures([_exposure("q2")])
    assert _eventually(lambda: log.exposure_count() == 3)
    assert flushed == [False, True, True, True]


def test_queued_exposures_are_committed_within_the_delay(backend: LogBackend) -> None:
    log = backend.open(exposure_delay_s=0.05)
    log.queue_exposures([_exposure("q1")])
    assert _eventually(lambda: log.exposure_count() == 1)


def test_a_failed_commit_of_queued_exposures_is_counted(backend: LogBackend) -> None:
    log = backend.open(exposure_delay_s=0.0)
    backend.execute("DROP TABLE exposures")
    log.queue_exposures([_exposure("q1"), _exposure("q2")])
    assert _eventually(lambda: log.dropped_exposures == 2)


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_keyed_write_is_stored_once_and_replayed(backend: LogBackend) -> None:
    log = backend.open()
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


def test_keys_expire_after_the_window_and_are_purged(backend: LogBackend) -> None:
    clock = _Clock()
    log = backend.open(idempotency_window_s=60.0, clock=clock)
    for n in range(5):
        log.submit_once(_events(1), WriteKey(f"k{n}", "f")).result()
    assert log.submit_once(_events(1), WriteKey("k0", "f")).result().replayed
    clock.now += 61.0
    # Past the window the key is new again (and may come with another body).
    again = log.submit_once(_events(2), WriteKey("k0", "g")).result()
    assert not again.replayed and log.count() == 7
    # The expired keys are gone: the table holds one window of keys.
    assert backend.rows("request_keys") == 1


def test_event_ids_are_stored_once_within_the_window(backend: LogBackend) -> None:
    clock = _Clock()
    log = backend.open(idempotency_window_s=60.0, clock=clock)

    def click(event_id: str | None, item: str = "i1") -> Event:
        context = None if event_id is None else {"event_id": event_id}
        return Event("u", item, "click", 1.0, 5, context)

    assert log.submit_once([click("a"), click("b")]).result().duplicates == 0
    # Re-batched retry: "a" again, twice, with a new "c" and an event without id.
    receipt = log.submit_once([click("a"), click("c"), click("a"), click(None)]).result()
    assert receipt == Receipt(accepted=4, duplicates=2, replayed=False, skipped=(0, 2))
    # Twice in one new write: the first is stored, the second skipped.
    assert log.submit_once([click("d"), click("d")]).result().skipped == (1,)
    assert [e.context for _, e in log.read()] == [
        {"event_id": "a"},
        {"event_id": "b"},
        {"event_id": "c"},
        None,
        {"event_id": "d"},
    ]
    assert log.append([click("b")]) == 0, "append counts what it wrote"
    clock.now += 61.0
    assert log.append([click("b")]) == 1, "an id past the window is new"
    assert backend.rows("event_keys") == 1


def test_two_logs_on_one_storage_share_the_keys(backend: LogBackend) -> None:
    # Two workers: each has its own log object (and writer) on the same storage.
    logs = [backend.open(), backend.open()]
    futures = [log.submit_once(_events(2), WriteKey("shared", "f")) for log in logs * 5]
    receipts = [f.result(timeout=30) for f in futures]
    assert sum(not r.replayed for r in receipts) == 1
    assert logs[0].count() == 2


def _click(user: str, item: str, t: int, kind: str = "click") -> Event:
    return Event(user, item, kind, 1.0, t)


def test_a_second_log_sees_the_first_ones_events(backend: LogBackend) -> None:
    # Two log objects on one storage stand for two worker processes: each has its
    # own connections, as separate processes would.
    writer, reader = backend.open(), backend.open()
    mine = LogFollower(writer, UserStateStore())
    theirs = LogFollower(reader, UserStateStore())
    assert theirs.poll() == 0  # empty log: nothing to apply
    writer.append([_click("u", "i1", 10), _click("u", "i2", 11, "impression")])
    assert mine.catch_up() == 2
    # Another process learns of a commit a moment later (PostgreSQL: a notification).
    assert _eventually(lambda: theirs.poll() == 2)
    for follower in (mine, theirs):
        history = follower.state.history("u")
        # The impression moves the position on but is not interest.
        assert list(history.item_ids) == ["i1"]
        assert follower.position == 2
    assert not reader.changed(), "no commit since the last poll"
    assert theirs.poll() == 0
    writer.append([_click("u", "i3", 12)])
    assert mine.catch_up() == 1
    assert _eventually(lambda: theirs.poll() == 1)
    # Applied once each, in log order, in both processes.
    assert list(theirs.state.history("u").item_ids) == ["i1", "i3"]
    assert list(mine.state.history("u").item_ids) == ["i1", "i3"]


def test_a_log_knows_its_own_commits_at_once(backend: LogBackend) -> None:
    log = backend.open()
    log.changed()
    log.append(_events(1))
    assert log.changed() and not log.changed()


def test_warm_replays_the_tail_and_catch_up_continues_after_it(backend: LogBackend) -> None:
    log = backend.open()
    log.append([_click(f"u{j}", "i", j) for j in range(10)])
    follower = LogFollower(log, UserStateStore(), batch=3)  # several reads per catch-up
    assert follower.warm(4) == 4
    assert {u for u in (f"u{j}" for j in range(10)) if len(follower.state.history(u))} == {
        "u6",
        "u7",
        "u8",
        "u9",
    }
    log.append([_click("late", "i", 99)])
    assert follower.catch_up() == 1
    assert len(follower.state.history("late")) == 1
    assert follower.warm(0) == 0 and follower.position == 11
    assert LogFollower(log, UserStateStore()).warm(100) == 11  # more than the log holds
