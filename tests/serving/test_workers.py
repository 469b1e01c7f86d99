"""What the workers of one server share: admin operations, their reports, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.serving import workers as workers_module
from recops.serving.workers import Operation, WorkerGroup


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[WorkerGroup, WorkerGroup]:
    return WorkerGroup(tmp_path, pid=101), WorkerGroup(tmp_path, pid=102)


def test_an_operation_reaches_the_other_worker(pair: tuple[WorkerGroup, WorkerGroup]) -> None:
    first, second = pair
    first.report(0, "news/1", None)
    second.report(0, "news/1", None)
    op = first.publish("switch", "news", "2", "news/2")
    assert first.applied == op == first.last_op()
    assert [w.pid for w in first.behind(op)] == [102]
    assert second.pending() == [Operation(op, "switch", "news", "2")]
    second.report(op, None, "switch news/2: it does not load")
    assert first.behind(op) == []
    states = {w.pid: w for w in second.workers()}
    assert states[101].serving == "news/2" and states[101].error is None
    assert states[102].error == "switch news/2: it does not load"
    assert second.pending() == []
    # A worker started later (a restart) replays every operation of the run, in order.
    later = WorkerGroup(first.run_dir, pid=103)
    first.publish("unload", "news", "1", "news/2")
    assert [o.op for o in later.pending()] == ["switch", "unload"]
    for group in (first, second, later):
        group.close()


def test_workers_not_seen_lately_are_not_waited_for(
    pair: tuple[WorkerGroup, WorkerGroup], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = pair
    second.report(0, "news/1", None)
    clock = workers_module.time.time()
    monkeypatch.setattr(workers_module.time, "time", lambda: clock + workers_module.LIVE_S + 1)
    first.report(0, "news/1", None)  # seen "now"; the second one is stale
    op = first.publish("load", "news", "2", "news/1")
    assert first.behind(op) == []
    assert [w.pid for w in first.workers()] == [101]
    assert [w.pid for w in first.workers(live_only=False)] == [101, 102]


def test_unknown_operations_are_refused(pair: tuple[WorkerGroup, WorkerGroup]) -> None:
    with pytest.raises(ValueError, match="`op` must be one of"):
        pair[0].publish("delete", "news", "1", None)


def test_metrics_snapshots_round_trip(pair: tuple[WorkerGroup, WorkerGroup]) -> None:
    first, second = pair
    first.write_metrics({"worker": "0", "families": ["a"]})
    second.write_metrics({"worker": "1", "families": ["b"]})
    first.write_metrics({"worker": "0", "families": ["a2"]})  # replaces its own snapshot
    (first.metrics_dir / "broken.json").write_text("{not json")
    assert sorted(s["families"][0] for s in second.read_metrics()) == ["a2", "b"]


def test_a_heartbeat_says_when_and_in_which_phase(tmp_path: Path) -> None:
    import os
    import time

    from recops.serving.workers import Heartbeat, last_beat

    assert last_beat(tmp_path, 7) is None
    heartbeat = Heartbeat(tmp_path, pid=7)
    assert last_beat(tmp_path, 7) is not None and last_beat(tmp_path, 7)[1] == "starting"  # type: ignore[index]
    os.utime(heartbeat.path, (0, 0))
    heartbeat.beat()
    beat = last_beat(tmp_path, 7)
    assert beat is not None and abs(beat[0] - time.time()) < 5
    heartbeat.set_phase("ready")
    assert last_beat(tmp_path, 7)[1] == "ready"  # type: ignore[index]


def test_a_reaped_worker_is_forgotten(pair: tuple[WorkerGroup, WorkerGroup]) -> None:
    first, second = pair
    first.report(0, "news/1", None)
    second.report(0, "news/1", None)
    first.forget(102)
    assert [w.pid for w in first.workers(live_only=False)] == [101]


def test_lagging_and_stale_workers_are_reported_not_left_out(
    pair: tuple[WorkerGroup, WorkerGroup], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recops.serving.coordination import worker_infos

    first, second = pair
    third = WorkerGroup(first.run_dir, pid=103)
    for group in (first, second, third):
        group.report(0, "news/1", None)
    clock = workers_module.time.time()
    monkeypatch.setattr(workers_module.time, "time", lambda: clock + workers_module.LIVE_S + 1)
    op = first.publish("load", "news", "2", "news/1")  # the first is heard of "now"
    second.report(0, "news/1", None)  # alive, has not applied it: lagging
    states = {w.pid: (w.state, w.up_to_date) for w in worker_infos(first, op)}
    assert states == {
        101: ("up_to_date", True),
        102: ("lagging", False),
        103: ("stale", False),  # not heard of for LIVE_S: hung, or just died
    }
    third.close()
