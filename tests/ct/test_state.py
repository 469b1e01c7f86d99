"""The controller's state file: allowed transitions only, an append-only log, one controller."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recops.ct.state import (
    TRANSITIONS,
    ControllerBusyError,
    StateError,
    StateStore,
    exclusive,
)


def test_a_cycle_is_recorded_with_every_transition(tmp_path: Path) -> None:
    with StateStore(tmp_path / "ct.sqlite3", clock=lambda: 5.0) as store:
        assert store.load("m").state == "idle" and store.load("m").cycle is None
        first = store.transition(
            "m", "idle", "training", at=100.0, action="train", reason="schedule: due",
            new_cycle={"trigger": "schedule", "reason": "due", "started_at": 100.0,
                       "watermark": 7, "overrides": {"model": {"epochs": 1}}},
            controller={"last_training": 100.0, "watermark": 7},
        )  # fmt: skip
        state = store.load("m")
        assert (state.state, state.cycle, state.watermark, state.last_training) == (
            "training", 1, 7, 100.0
        )  # fmt: skip
        cycle = store.cycle(1)
        assert cycle.overrides == {"model": {"epochs": 1}} and cycle.trigger == "schedule"
        store.transition(
            "m", "training", "rejected", at=200.0, action="gate_refused", reason="gate: failed",
            detail={"gate": {"passed": False}}, cycle={"version": "3", "outcome": "rejected",
                                                      "gate": {"passed": False}},
        )  # fmt: skip
        store.transition("m", "rejected", "idle", at=201.0, action="close", reason="closed")
        assert store.load("m").cycle is None
        assert store.cycle(1).gate == {"passed": False} and store.cycle(1).version == "3"
        log = store.decisions("m")
        assert [(d.state_from, d.state_to, d.action) for d in log] == [
            ("idle", "training", "train"),
            ("training", "rejected", "gate_refused"),
            ("rejected", "idle", "close"),
        ]
        assert log[0] == first and log[1].detail == {"gate": {"passed": False}}
        assert (log[0].at, log[0].wall, log[0].cycle) == (100.0, 5.0, 1)
        assert [d.action for d in store.decisions("m", limit=1)] == ["close"]
        assert store.models() == ["m"] and store.next_cycle_id() == 2


def test_a_transition_not_in_the_machine_or_from_another_state_is_refused(tmp_path: Path) -> None:
    assert ("idle", "promoted") not in TRANSITIONS
    with StateStore(tmp_path / "ct.sqlite3") as store:
        with pytest.raises(StateError, match="never goes from 'idle' to 'promoted'"):
            store.transition("m", "idle", "promoted", at=0, action="x", reason="x")
        with pytest.raises(StateError, match="is 'idle', not 'training'"):
            store.transition("m", "training", "gated", at=0, action="x", reason="x")
        assert store.decisions() == []


def test_the_decision_log_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "ct.sqlite3"
    with StateStore(path) as store:
        store.note("m", at=1.0, action="champion_changed", reason="moved by hand")
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE decisions SET reason = 'edited'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM decisions")
    conn.close()


def test_one_controller_per_state_file(tmp_path: Path) -> None:
    path = tmp_path / "ct.sqlite3"
    with exclusive(path):
        # Another process is refused while this one holds the lock, naming the holder.
        script = (
            "from recops.ct.state import exclusive, ControllerBusyError\n"
            f"try:\n    exclusive({str(path)!r}).__enter__()\n"
            "except ControllerBusyError as e:\n    print(e)\n"
        )
        env_path = str(Path(__file__).resolve().parents[2] / "src")
        found = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True, text=True, check=True, env={"PYTHONPATH": env_path},
        )  # fmt: skip
        assert "another controller holds" in found.stdout and "pid" in found.stdout
    with exclusive(path):  # released: taken again
        pass


def test_the_lock_is_not_reentrant_within_a_process(tmp_path: Path) -> None:
    path = tmp_path / "ct.sqlite3"
    with exclusive(path), pytest.raises(ControllerBusyError), exclusive(path):
        pass
