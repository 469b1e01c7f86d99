"""The online state follows the event log: other processes' events, once each."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.serving.eventlog import Event, SQLiteEventLog
from recops.serving.follower import LogFollower
from recops.serving.state import UserStateStore


def _click(user: str, item: str, t: int, kind: str = "click") -> Event:
    return Event(user, item, kind, 1.0, t)


def test_a_second_log_on_the_same_file_sees_the_first_ones_events(tmp_path: Path) -> None:
    # Two SQLiteEventLog objects on one file stand for two worker processes: each
    # has its own connections, as separate processes would.
    path = tmp_path / "events.sqlite3"
    writer, reader = SQLiteEventLog(path), SQLiteEventLog(path)
    try:
        mine = LogFollower(writer, UserStateStore())
        theirs = LogFollower(reader, UserStateStore())
        assert theirs.poll() == 0  # empty log: nothing to apply
        writer.append([_click("u", "i1", 10), _click("u", "i2", 11, "impression")])
        assert mine.catch_up() == 2
        assert theirs.poll() == 2
        for follower in (mine, theirs):
            history = follower.state.history("u")
            # The impression moves the position on but is not interest.
            assert list(history.item_ids) == ["i1"]
            assert follower.position == 2
        assert not reader.changed(), "no commit since the last poll"
        assert theirs.poll() == 0
        writer.append([_click("u", "i3", 12)])
        assert theirs.poll() == 1 and mine.catch_up() == 1
        # Applied once each, in log order, in both processes.
        assert list(theirs.state.history("u").item_ids) == ["i1", "i3"]
        assert list(mine.state.history("u").item_ids) == ["i1", "i3"]
    finally:
        writer.close()
        reader.close()


def test_warm_replays_the_tail_and_catch_up_continues_after_it(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
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
    finally:
        log.close()


def test_batch_must_be_positive(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        with pytest.raises(ValueError, match="`batch` must be a positive int"):
            LogFollower(log, UserStateStore(), batch=0)
    finally:
        log.close()
