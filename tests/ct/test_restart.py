"""A controller killed and started again picks up where it was: nothing trained twice, an
experiment in flight keeps running, an alias already moved is not moved again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recops.ct import Controller, CTConfig
from recops.ct import controller as controller_module
from recops.experiments.store import ExperimentStore
from recops.pipelines.runstore import RunStore
from tests.ct.conftest import MODEL, Site, actions, add_clicks, ct_document, registered, serve

BETTER = {"champion": 0.1, "challenger": 0.4}


class Killed(BaseException):
    """Stands for SIGKILL at one point of a round: nothing after it runs, no cleanup."""


def _dying_on(store: object, action: str, monkeypatch: pytest.MonkeyPatch) -> None:
    record = store.transition  # type: ignore[attr-defined]

    def die(*args: object, **kwargs: object) -> object:
        if kwargs.get("action") == action:
            raise Killed
        return record(*args, **kwargs)

    monkeypatch.setattr(store, "transition", die)


def _bootstrapped(site: Site, tracking_uri: str) -> tuple[dict, int]:
    document = ct_document(site, tracking_uri)
    with Controller(CTConfig.model_validate(document)) as first:
        assert [d.action for d in first.step(site.end)] == ["train", "promote", "done"]
    add_clicks(site, site.end + 60, 80)
    return document, site.end + 600


def _state(document: dict) -> str | None:
    path = CTConfig.model_validate(document).state_target
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT state FROM controller WHERE model = ?", (MODEL,)).fetchone()
    return None if row is None else str(row[0])


def test_killed_during_training_resumes_the_same_cycle(
    site: Site, tracking_uri: str, tmp_path: Path
) -> None:
    """A real ``recops ct train`` process, SIGKILLed while its pipeline runs."""
    document, now = _bootstrapped(site, tracking_uri)
    config_file = tmp_path / "ct.json"
    config_file.write_text(json.dumps(document), encoding="utf-8")
    command = [sys.executable, "-c", "from recops.cli import app; app()", "ct", "train",
               "--config", str(config_file), "--reason", "new data", "--now", str(now),
               "--json"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _state(document) != "training":
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the cycle never started training"
            time.sleep(0.05)
        time.sleep(0.5)  # into the pipeline
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert _state(document) == "training"  # killed before the transition out of it

    # Started again (the kernel released the dead process's lock): the same cycle goes on.
    with Controller(CTConfig.model_validate(document)) as again:
        decisions = again.step(now + 60)
        assert [d.action for d in decisions] == ["gate_passed", "test_started"]
        assert again.state.cycle == 2 and again.state.state == "experimenting"
        assert actions(again).count("train") == 2  # bootstrap's and this cycle's, once each
        assert registered(again)["version"].tolist() == ["1", "2"]


def test_killed_after_training_finds_every_step_cached(
    site: Site, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, now = _bootstrapped(site, tracking_uri)
    real = controller_module.run_pipeline

    def train_then_die(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise Killed  # before the controller records the outcome

    monkeypatch.setattr(controller_module, "run_pipeline", train_then_die)
    with Controller(CTConfig.model_validate(document)) as first, pytest.raises(Killed):
        first.train_now(now, reason="new data")
    monkeypatch.setattr(controller_module, "run_pipeline", real)

    with Controller(CTConfig.model_validate(document)) as again:
        assert again.state.state == "training"
        decisions = again.step(now + 60)
        gated = decisions[0]
        assert gated.action == "gate_passed" and gated.detail["version"] == "2"
        assert gated.detail["new"] is False  # registered by the killed run, found by digest
        runs = RunStore(document["pipeline"]["storage"]["runs"])
        try:
            steps = {s.name: s.status for s in runs.get_run(gated.detail["run_id"]).steps}
        finally:
            runs.close()
        assert steps["train"] == "cached" and steps["ingest"] == "cached"
        assert registered(again)["version"].tolist() == ["1", "2"]


def test_killed_while_experimenting_the_test_keeps_running(site: Site, tracking_uri: str) -> None:
    document, now = _bootstrapped(site, tracking_uri)
    with Controller(CTConfig.model_validate(document)) as first:
        first.train_now(now, reason="new data")
        assert first.state.state == "experimenting"
    with ExperimentStore(site.event_log) as store:
        started = store.get("ct-two_tower-2").started_at
    serve(site, now + 60, BETTER, units=400)  # the server kept serving it meanwhile

    with Controller(CTConfig.model_validate(document)) as again:
        assert again.step(now + 600) == []  # significant, but min_duration_s is an hour
        decisions = again.step(now + 3_600)
        assert [d.action for d in decisions] == ["promote"]
        assert actions(again).count("test_started") == 1
    with ExperimentStore(site.event_log) as store:
        assert store.get("ct-two_tower-2").started_at == started


def test_killed_between_the_promotion_and_its_record_does_not_promote_twice(
    site: Site, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, now = _bootstrapped(site, tracking_uri)
    with Controller(CTConfig.model_validate(document)) as first:
        first.train_now(now, reason="new data")
    serve(site, now + 60, BETTER, units=400)

    with Controller(CTConfig.model_validate(document)) as dying:
        _dying_on(dying.store, "promote", monkeypatch)
        with pytest.raises(Killed):
            dying.step(now + 3_600)
        assert dying.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]

    with Controller(CTConfig.model_validate(document)) as again:
        decisions = again.step(now + 3_660)
        # The alias moved before the kill (the registry's audit says who and why): the
        # promotion is recorded, not redone, and not mistaken for someone else's.
        assert [d.action for d in decisions] == ["promote"]
        assert decisions[0].reason.endswith(
            "(resumed after a restart); champion → version 2, "
            "50% of the units held back on version 1 for "
            "3600 s (ct-two_tower-2-watch)"
        )
        assert again.state.state == "promoted" and again.state.champion == "2"
        moves = [m for m in again.registry.audit(MODEL, "champion") if m.version == "2"]
        assert len(moves) == 1
        with ExperimentStore(site.event_log) as store:
            watches = [r for r in store.experiments() if r.name == "ct-two_tower-2-watch"]
        assert len(watches) == 1 and watches[0].status == "running"


def test_killed_between_the_rollback_and_its_record_does_not_roll_back_twice(
    site: Site, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, now = _bootstrapped(site, tracking_uri)
    with Controller(CTConfig.model_validate(document)) as first:
        first.train_now(now, reason="new data")
        serve(site, now + 60, BETTER, units=400)
        assert [d.action for d in first.step(now + 3_600)] == ["promote"]
    serve(site, now + 3_700, {"previous": 0.4, "champion": 0.05}, units=400, seed=4)
    with Controller(CTConfig.model_validate(document)) as dying:
        _dying_on(dying.store, "rollback", monkeypatch)
        with pytest.raises(Killed):
            dying.step(now + 3_800)
        assert dying.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]

    with Controller(CTConfig.model_validate(document)) as again:
        decisions = again.step(now + 3_860)
        assert [d.action for d in decisions] == ["rollback", "close"]
        assert "(resumed after a restart); champion rolled back to version 1" in decisions[0].reason
        assert again.store.cycle(2).outcome == "rolled_back"
        rollbacks = [m for m in again.registry.audit(MODEL, "champion") if m.action == "rollback"]
        assert len(rollbacks) == 1


def test_killed_after_promoting_the_first_model_records_it(
    site: Site, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = ct_document(site, tracking_uri)
    with Controller(CTConfig.model_validate(document)) as dying:
        _dying_on(dying.store, "promote", monkeypatch)
        with pytest.raises(Killed):
            dying.step(site.end)
        assert dying.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    with Controller(CTConfig.model_validate(document)) as again:
        decisions = again.step(site.end + 60)
        assert [d.action for d in decisions] == ["promote", "done"]
        assert again.state.champion == "1"
        assert len(again.registry.audit(MODEL, "champion")) == 1
