"""The controller's state: allowed transitions only, an append-only log, one controller.

Every test runs on both stores: the embedded SQLite file and PostgreSQL (a schema of
its own; skipped, saying why, without ``RECOPS_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recops.ct.state import (
    TRANSITIONS,
    BaseStateStore,
    ControllerBusyError,
    StateError,
    StateStore,
    open_state_store,
)
from tests.serving.backends import postgres_server, postgres_url  # noqa: F401  (fixtures)

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a state store lives: a SQLite file, or a PostgreSQL URL with a fresh schema."""
    if request.param == "sqlite":
        return tmp_path / "ct.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(target: str | Path) -> Iterator[BaseStateStore]:
    with open_state_store(target) as opened:
        yield opened


def _execute(target: str | Path, statement: str) -> None:
    """Run ``statement`` on a connection of its own, as another program would."""
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(statement)


def test_the_target_picks_the_backend(target: str | Path) -> None:
    from recops.ct.state_postgres import PostgresStateStore

    with open_state_store(target) as opened:
        if isinstance(target, Path):
            assert type(opened) is StateStore and opened.location == str(target)
        else:  # named in messages without the password or the options
            assert type(opened) is PostgresStateStore
            assert opened.location == target.split("?")[0]


def test_a_cycle_is_recorded_with_every_transition(target: str | Path) -> None:
    with open_state_store(target, clock=lambda: 5.0) as store:
        assert store.load("m").state == "idle" and store.load("m").cycle is None
        assert store.next_cycle_id() == 1
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
        store.set_last_check("m", {"at": 300.0, "reason": "nothing due"}, 300.0)
        note = store.note("m", at=301.0, action="champion_changed", reason="moved by hand",
                          controller={"champion": "4", "champion_since": 301.0})  # fmt: skip
        assert (note.state_from, note.state_to, note.cycle) == ("idle", "idle", None)
        again = store.load("m")
        assert (again.champion, again.champion_since, again.updated_at) == ("4", 301.0, 301.0)
        assert again.last_check == {"at": 300.0, "reason": "nothing due"}
        with pytest.raises(KeyError, match="no cycle 9 in "):
            store.cycle(9)


def test_the_store_reopens_what_it_wrote(target: str | Path) -> None:
    with open_state_store(target) as store:
        store.transition(
            "m", "idle", "training", at=1.0, action="train", reason="r",
            new_cycle={"trigger": "manual", "reason": "r", "started_at": 1.0, "watermark": 3},
        )  # fmt: skip
    with open_state_store(target) as again:
        assert again.load("m").state == "training" and again.load("m").cycle == 1
        assert [c.to_dict()["watermark"] for c in again.cycles("m")] == [3]
        assert [d.action for d in again.decisions()] == ["train"]


def test_a_transition_not_in_the_machine_or_from_another_state_is_refused(
    store: BaseStateStore,
) -> None:
    assert ("idle", "promoted") not in TRANSITIONS
    with pytest.raises(StateError, match="never goes from 'idle' to 'promoted'"):
        store.transition("m", "idle", "promoted", at=0, action="x", reason="x")
    with pytest.raises(StateError, match="is 'idle', not 'training'"):
        store.transition("m", "training", "gated", at=0, action="x", reason="x")
    with pytest.raises(StateError, match="no field"):
        store.transition("m", "idle", "training", at=0, action="x", reason="x",
                         controller={"mood": "good"})  # fmt: skip
    assert store.decisions() == [] and store.models() == []


def test_two_writers_cannot_both_leave_a_state(
    target: str | Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second transition waits for the first and then sees the state it left."""
    with open_state_store(target) as first, open_state_store(target) as second:
        read = first.load
        inside = threading.Event()

        def slow_load(model: str):  # type: ignore[no-untyped-def]
            found = read(model)
            inside.set()
            time.sleep(0.5)  # in the first transaction, after its check
            return found

        monkeypatch.setattr(first, "load", slow_load)
        outcomes: dict[str, str] = {}

        def train(name: str, store: BaseStateStore) -> None:
            try:
                store.transition("m", "idle", "training", at=1.0, action="train", reason=name)
                outcomes[name] = "moved"
            except StateError as err:
                outcomes[name] = str(err)

        thread = threading.Thread(target=train, args=("first", first))
        thread.start()
        assert inside.wait(10)
        train("second", second)
        thread.join()
        assert outcomes["first"] == "moved"
        assert "is 'training', not 'idle'" in outcomes["second"]
        assert [d.reason for d in second.decisions()] == ["first"]


def test_the_decision_log_is_append_only(store: BaseStateStore, target: str | Path) -> None:
    store.note("m", at=1.0, action="champion_changed", reason="moved by hand")
    edits = ["UPDATE decisions SET reason = 'edited'", "DELETE FROM decisions"]
    if not isinstance(target, Path):
        edits.append("TRUNCATE decisions")
    for statement in edits:
        with pytest.raises(Exception, match="append-only"):
            _execute(target, statement)
    assert [d.reason for d in store.decisions()] == ["moved by hand"]


def _holder(target: str | Path) -> subprocess.Popen[str]:
    """Another process that takes the controller's lock, says so and waits."""
    script = (
        "import sys, time\n"
        "from recops.ct.state import open_state_store\n"
        f"store = open_state_store({str(target)!r})\n"
        "with store.exclusive():\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _take_within(store: BaseStateStore, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with store.exclusive():
                return
        except ControllerBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_one_controller_per_state_and_a_dead_holder_frees_it(
    store: BaseStateStore, target: str | Path
) -> None:
    holder = _holder(target)
    try:
        # Refused while another process holds the lock, naming the holder.
        with pytest.raises(
            ControllerBusyError, match=rf"another controller holds .*pid {holder.pid}"
        ):
            store.exclusive().__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel closed its file or its connection: the lock is free.
    _take_within(store, 10.0)
    with store.exclusive():  # released at the block's end: taken again
        pass


def test_the_lock_is_not_reentrant_within_a_process(store: BaseStateStore) -> None:
    with store.exclusive(), pytest.raises(ControllerBusyError), store.exclusive():
        pass


def test_a_lock_whose_connection_drops_is_released(postgres_url: str) -> None:  # noqa: F811
    import psycopg

    with open_state_store(postgres_url) as first, open_state_store(postgres_url) as second:
        with first.exclusive():
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                (pid,) = admin.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND (classid, objid) = (hashtext('recops.ct.controller')::oid, "
                    "hashtext(current_schema())::oid)"
                ).fetchall()[0]
                with pytest.raises(ControllerBusyError, match=f"backend pid {pid}"):
                    second.exclusive().__enter__()
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            _take_within(second, 10.0)
        # The first store's own connection is untouched: it goes on writing.
        first.note("m", at=1.0, action="champion_changed", reason="after the drop")
        assert [d.reason for d in second.decisions()] == ["after the drop"]


def test_the_lock_is_per_schema(postgres_url: str, postgres_server: str) -> None:  # noqa: F811
    """Two controllers on two schemas (two event logs) of one database run side by side."""
    import uuid

    import psycopg

    from tests.serving.backends import with_schema

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        with (
            open_state_store(postgres_url) as one,
            open_state_store(with_schema(postgres_server, schema)) as other,
            one.exclusive(),
            other.exclusive(),
        ):
            one.note("m", at=1.0, action="champion_changed", reason="one")
            assert other.decisions() == []
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
