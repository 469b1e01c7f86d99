"""A cycle's snapshot: the log up to its watermark, exact duplicates written once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recops.ct.training import count_events, log_position, write_snapshot
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Event

NOW = 1_700_000_000


def test_the_snapshot_stops_at_the_watermark_and_drops_exact_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    assert log_position(path) == 0 and count_events(path, 0, ("click",)) == 0
    log = SQLiteEventLog(path)
    try:
        log.append([Event("u1", "a", "click", 1.0, NOW), Event("u1", "a", "click", 1.0, NOW),
                    Event("u2", "b", "view", 1.0, NOW + 1)])  # fmt: skip
        upto = log.last_id()
        log.append([Event("u3", "c", "click", 1.0, NOW + 2)])  # after the watermark
    finally:
        log.close()
    written = write_snapshot(path, upto, tmp_path / "snap" / "cycle-1.parquet")
    assert (written.rows, written.duplicates) == (2, 1)
    frame = pd.read_parquet(tmp_path / "snap" / "cycle-1.parquet")
    assert frame[["user_id", "item_id", "event"]].values.tolist() == [
        ["u1", "a", "click"], ["u2", "b", "view"]
    ]  # fmt: skip
    assert count_events(path, upto, ("click",)) == 1
    assert not list((tmp_path / "snap").glob(".*.tmp"))


def test_the_snapshot_holds_the_slates_served_up_to_its_last_event_as_impressions(
    tmp_path: Path,
) -> None:
    from recops.serving.records import Exposure

    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path)

    def slate(request_id: str, at: int, items: list[str]) -> Exposure:
        n = len(items)
        return Exposure(request_id=request_id, timestamp=at, unit="u1", model="m",
                        version="1", policy={"kind": "greedy"}, items=items,
                        propensities=[1.0] * n, scores=[0.0] * n)  # fmt: skip

    try:
        log.submit_exposures([slate("r1", NOW, ["a", "b"]), slate("r2", NOW + 50, ["c"])]).result()
        log.append([Event("u1", "a", "click", 1.0, NOW + 5)])
        upto = log.last_id()
    finally:
        log.close()
    written = write_snapshot(path, upto, tmp_path / "cycle-1.parquet")
    frame = pd.read_parquet(tmp_path / "cycle-1.parquet")
    # r2 was served after the last event kept: not part of this snapshot.
    assert sorted(map(tuple, frame[["item_id", "event"]].values.tolist())) == [
        ("a", "click"), ("a", "impression"), ("b", "impression")
    ]  # fmt: skip
    assert written.rows == 3
