"""The continuous-training controller: one :meth:`Controller.step` per round, persisted.

A round (``step(now)``) advances the state machine of :mod:`recops.ct.state` as far
as it can without waiting, one persisted transition at a time:

``idle``
    :func:`~recops.ct.triggers.check_triggers`; when one fires, snapshot the data
    (:mod:`recops.ct.training`) and go to ``training``.
``training``
    Run the gated pipeline (train → evaluate against the champion → OPE →
    register → gate → ``challenger``). Refused by the gate, or failed: ``rejected``
    with every reason. The first model (no champion): promoted at once. Else ``gated``.
``gated``
    Start the test of the challenger against the champion (A/B or interleaving,
    :mod:`recops.ct.experiments`) in the event log's experiment store; the server
    applies it. Then ``experimenting``.
``experimenting``
    Analyse the server's log. *Ship* (after ``min_duration_s`` and ``min_units``):
    promote the challenger to ``champion``, stop the test, start the watch, go to
    ``promoted``. *Don't ship* (a failed guardrail or a sample-ratio mismatch at
    once; a significantly worse challenger after ``min_duration_s``; no decision
    by ``max_duration_s``): stop the test, champion unchanged, ``rejected``.
``promoted``
    Judge the guardrails of the new champion against the holdback on the old one:
    one that fails rolls ``champion`` back (``rolled_back``); after
    ``watch.duration_s`` the watch ends (``idle``).

Every transition is logged with its reason (``recops ct log``). A controller
killed at any point repeats, when started again, only the action of the
transition it had not finished; every action is idempotent (the pipeline's cache
and the registry's digests: nothing is trained twice; an experiment that runs is
adopted, not started again; an alias already moved is not moved again).
``now`` is the controller's clock (the wall clock in ``recops ct run``; the
simulated world's in the demo and the tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from recops.ct import experiments as tests
from recops.ct.config import CTConfig
from recops.ct.state import ControllerState, Cycle, Decision, open_state_store
from recops.ct.training import (
    TrainingOutcome,
    cycle_pipeline,
    log_position,
    run_pipeline,
    write_snapshot,
)
from recops.ct.triggers import check_triggers
from recops.pipelines.progress import Reporter
from recops.pipelines.training.config import EventLogSource
from recops.registry.audit import AliasMove

#: How the promotion of a cycle's model without a champion to test it against ends.
FIRST_MODEL = "no champion to test it against: the first model is promoted"
#: Transitions one round makes at most (a cycle has at most six).
MAX_TRANSITIONS = 8
Handler = Callable[[ControllerState, float], Decision | None]


class Controller:
    """The controller of one model (``config.model``), its state at ``config.state_target``.

    Parameters
    ----------
    config:
        The controller's config.
    reporter:
        Progress of the pipeline's steps (silent by default).
    """

    def __init__(self, config: CTConfig, *, reporter: Reporter | None = None) -> None:
        self.config = config
        self.model = config.model
        self.store = open_state_store(config.state_target)
        self.reporter = reporter
        self._registry: Any = None

    def close(self) -> None:
        """Close the state store."""
        self.store.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def registry(self) -> Any:
        """The MLflow registry of the pipeline's ``[registry]`` (opened once)."""
        if self._registry is None:
            from recops.registry import Registry

            self._registry = Registry.from_config(self.config.pipeline.registry)
        return self._registry

    @property
    def state(self) -> ControllerState:
        """The current state."""
        return self.store.load(self.model)

    # ------------------------------------------------------------------ rounds
    def step(self, now: float | None = None) -> list[Decision]:
        """One round at ``now`` (default: the wall clock); the decisions it made."""
        moment = time.time() if now is None else float(now)
        with self.store.exclusive():
            decisions = self._observe_champion(moment)
            decisions.extend(self._advance(moment))
            return decisions

    def train_now(
        self, now: float | None = None, *, reason: str, overrides: dict[str, Any] | None = None
    ) -> list[Decision]:
        """Start a cycle by hand (``manual`` trigger) from ``idle``, then run the round.

        ``overrides`` are pipeline fields for this cycle only (e.g. ``{"model":
        {"epochs": 1}}``).
        """
        moment = time.time() if now is None else float(now)
        with self.store.exclusive():
            decisions = self._observe_champion(moment)
            state = self.state
            if state.state != "idle":
                raise RuntimeError(
                    f"the controller of {self.model!r} is {state.state} (cycle {state.cycle}): "
                    "a cycle starts only from idle"
                )
            decisions.append(self._start_cycle(moment, "manual", reason, {}, overrides or {}))
            decisions.extend(self._advance(moment))
            return decisions

    def run(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
        on_decision: Callable[[Decision], None] | None = None,
        max_steps: int | None = None,
    ) -> int:
        """Step every ``poll_interval_s`` until ``should_stop()``; the rounds run."""
        rounds = 0
        while not should_stop():
            for decision in self.step(clock()):
                if on_decision is not None:
                    on_decision(decision)
            rounds += 1
            if max_steps is not None and rounds >= max_steps:
                break
            sleep(self.config.poll_interval_s)
        return rounds

    def _advance(self, now: float) -> list[Decision]:
        handlers: dict[str, Handler] = {
            "idle": self._idle,
            "training": self._training,
            "gated": self._gated,
            "experimenting": self._experimenting,
            "promoted": self._promoted,
            "rejected": self._close,
            "rolled_back": self._close,
        }
        decisions: list[Decision] = []
        for _ in range(MAX_TRANSITIONS):
            state = self.state
            decision = handlers[state.state](state, now)
            if decision is None:
                break
            decisions.append(decision)
        return decisions

    def _observe_champion(self, now: float) -> list[Decision]:
        """Note a champion moved by someone else (``recops model promote``, a rollback)."""
        found = self.registry.champion(self.model)
        version = None if found is None else found.version
        state = self.state
        if version == state.champion:
            return []
        if state.cycle is not None and self._own_move(self.store.cycle(state.cycle)) is not None:
            return []  # the controller's own move, killed before its record: the round records it
        was = state.champion or "none"
        note = self.store.note(
            self.model,
            at=now,
            action="champion_changed",
            reason=f"champion is version {version or 'none'} (was {was}): moved outside the "
            "controller",
            controller={"champion": version, "champion_since": None if found is None else now},
        )
        return [note]

    # ---------------------------------------------------------------- handlers
    def _idle(self, state: ControllerState, now: float) -> Decision | None:
        check = check_triggers(self.config, state, now)
        self.store.set_last_check(
            self.model, {"at": now, "triggers": check.findings, "reason": check.reason}, now
        )
        if not check.fired:
            return None
        assert check.kind is not None
        return self._start_cycle(now, check.kind, check.reason, check.findings, {})

    def _start_cycle(
        self,
        now: float,
        kind: str,
        reason: str,
        findings: dict[str, Any],
        overrides: dict[str, Any],
    ) -> Decision:
        config = self.config
        cycle_id = self.store.next_cycle_id()
        watermark = log_position(config.event_log)
        snapshot = None
        detail: dict[str, Any] = {"trigger": kind, "findings": findings, "watermark": watermark}
        if isinstance(config.pipeline.source, EventLogSource):
            path = config.snapshot_dir / f"{self.model}-cycle-{cycle_id}.parquet"
            written = write_snapshot(config.event_log, watermark, path)
            detail["snapshot_rows"] = written.rows
            detail["snapshot_duplicates"] = written.duplicates
            snapshot = str(path)
        if overrides:
            detail["overrides"] = overrides
        champion = self.state.champion
        return self.store.transition(
            self.model,
            "idle",
            "training",
            at=now,
            action="train",
            reason=f"{kind}: {reason}",
            detail=detail,
            new_cycle={
                "trigger": kind,
                "reason": reason,
                "started_at": now,
                "watermark": watermark,
                "snapshot": snapshot,
                "overrides": overrides,
                "champion": champion,
            },
            controller={"last_training": now, "watermark": watermark},
        )

    def _training(self, state: ControllerState, now: float) -> Decision:
        cycle = self.store.cycle(_current(state))
        pipeline = cycle_pipeline(self.config.pipeline, cycle.snapshot, cycle.overrides)
        outcome = run_pipeline(pipeline, self.reporter)
        detail = _training_detail(outcome)
        fields: dict[str, Any] = {"run_id": outcome.run_id}
        if outcome.error is not None:
            return self._reject(now, "training", "training_failed", outcome.error, detail, fields)
        fields.update(version=outcome.version, folder=outcome.folder, gate=outcome.gate)
        version = outcome.version
        if not outcome.passed:
            reason = f"the gate refused version {version}: {outcome.gate['summary']}"
            return self._reject(now, "training", "gate_refused", reason, detail, fields)
        champion = self.registry.champion(self.model)
        # Killed after promoting the first model, before recording it: record it only.
        promoted = (
            champion is not None
            and champion.version == version
            and (cycle.champion is None and self._own_move(cycle) is not None)
        )
        if champion is not None and champion.version == version and not promoted:
            reason = (
                f"version {version} is the champion already (same model digest): "
                "nothing new to test"
            )
            return self._reject(now, "training", "unchanged", reason, detail, fields)
        assert version is not None
        if champion is None or promoted:
            reason = (
                f"version {version} passed the gate ({outcome.gate['summary']}) and there is "
                f"{FIRST_MODEL}"
            )
            if not promoted:
                self.registry.promote(self.model, version, actor=self.config.actor, reason=reason)
            return self.store.transition(
                self.model, "training", "promoted", at=now, action="promote", reason=reason,
                detail=detail, cycle=fields, controller={"champion": version},
            )  # fmt: skip
        reason = (
            f"version {version} passed the gate ({outcome.gate['summary']}): it is the challenger"
        )
        return self.store.transition(
            self.model, "training", "gated", at=now, action="gate_passed", reason=reason,
            detail=detail, cycle=fields,
        )  # fmt: skip

    def _gated(self, state: ControllerState, now: float) -> Decision:
        from recops.experiments.config import ExperimentConfigError
        from recops.experiments.store import ExperimentStoreError
        from recops.registry.materialise import materialise_version

        cycle = self.store.cycle(_current(state))
        config, template = self.config, self.config.experiment
        champion = self.registry.champion(self.model)
        if champion is None:
            reason = "the champion was removed meanwhile: nothing to test the challenger against"
            return self._reject(now, "gated", "no_champion", reason, {}, {})
        repository = config.pipeline.publish.repository
        name = tests.test_name(self.model, cycle.id)
        try:
            folder = materialise_version(self.registry, champion, repository)
            assert cycle.folder is not None
            experiment = tests.test_config(template, name, self.model, folder, cycle.folder)
            resolve = tests.resolver(self.registry, repository)
            started = tests.ensure_running(
                config.event_log, experiment, resolve, now=now, actor=config.actor
            )
        except (ExperimentConfigError, ExperimentStoreError, LookupError) as err:
            reason = f"the test of version {cycle.version} could not start: {err}"
            return self._reject(now, "gated", "test_not_started", reason, {}, {})
        share = (
            "every unit sees both rankings (team draft)"
            if template.type == "interleaving"
            else f"{template.challenger_weight:.0%} of the units on the challenger"
        )
        reason = (
            f"{'interleaving' if template.type == 'interleaving' else 'A/B'} test {name}: "
            f"champion version {champion.version} against challenger version {cycle.version}, "
            f"{share}, {template.traffic:.0%} of layer {template.layer!r}"
        )
        return self.store.transition(
            self.model, "gated", "experimenting", at=now, action="test_started", reason=reason,
            detail={"experiment": experiment.model_dump(mode="json")},
            cycle={"experiment": name, "experiment_started_at": float(started),
                   "champion": champion.version, "champion_folder": folder},
        )  # fmt: skip

    def _experimenting(self, state: ControllerState, now: float) -> Decision | None:
        cycle = self.store.cycle(_current(state))
        config, template = self.config, self.config.experiment
        name = cycle.experiment
        assert name is not None and cycle.experiment_started_at is not None
        if tests.status(config.event_log, name) == "stopped":
            move = self._own_move(cycle)
            if move is not None and move.action == "promote":
                # Killed inside the ship, after the promotion: finish it (idempotent).
                why = move.reason.removeprefix(f"test {name}: ")
                return self._ship(cycle.id, now, f"{why} (resumed after a restart)", {})
            reason = f"test {name} was stopped outside the controller: the champion stays"
            return self._reject(now, "experimenting", "test_stopped", reason, {}, {})
        verdict = tests.judge_test(config.event_log, name, template)
        elapsed = now - cycle.experiment_started_at
        detail = {"elapsed_s": elapsed, **verdict.to_dict()}
        self.store.set_last_check(self.model, {"at": now, "analysis": detail}, now)
        long_enough = elapsed >= template.min_duration_s
        if verdict.call == "dont_ship" and (verdict.urgent or long_enough):
            tests.ensure_stopped(config.event_log, name, now=now, actor=config.actor)
            reason = f"don't ship: {verdict.reason}; test stopped, the champion stays"
            return self._reject(now, "experimenting", "dont_ship", reason, detail, {})
        if verdict.call == "ship" and long_enough:
            return self._ship(cycle.id, now, verdict.reason, detail)
        if elapsed >= template.max_duration_s:
            tests.ensure_stopped(config.event_log, name, now=now, actor=config.actor)
            reason = (
                f"no decision after {elapsed:.0f} s (max_duration_s {template.max_duration_s:g}): "
                f"{verdict.reason}; test stopped, the champion stays"
            )
            return self._reject(now, "experimenting", "inconclusive", reason, detail, {})
        return None

    def _ship(self, cycle_id: int, now: float, why: str, detail: dict[str, Any]) -> Decision:
        config = self.config
        cycle = self.store.cycle(cycle_id)
        assert cycle.version is not None and cycle.experiment is not None
        reason = f"ship: {why}"
        champion = self.registry.champion(self.model)
        if champion is None or champion.version != cycle.version:
            self.registry.promote(
                self.model, cycle.version, actor=config.actor,
                reason=f"test {cycle.experiment}: {why}",
            )  # fmt: skip
        tests.ensure_stopped(config.event_log, cycle.experiment, now=now, actor=config.actor)
        fields: dict[str, Any] = {}
        watch = config.watch
        if watch.holdback > 0 and cycle.champion_folder is not None and cycle.folder is not None:
            name = tests.watch_name(self.model, cycle.id)
            experiment = tests.watch_config(
                config.experiment, watch, name, self.model, cycle.champion_folder, cycle.folder
            )
            resolve = tests.resolver(self.registry, config.pipeline.publish.repository)
            started = tests.ensure_running(
                config.event_log, experiment, resolve, now=now, actor=config.actor
            )
            fields = {"watch": name, "watch_started_at": float(started)}
            reason += (
                f"; champion → version {cycle.version}, {watch.holdback:.0%} of the units held "
                f"back on version {cycle.champion} for {watch.duration_s:g} s ({name})"
            )
        else:
            reason += f"; champion → version {cycle.version}"
        return self.store.transition(
            self.model, "experimenting", "promoted", at=now, action="promote", reason=reason,
            detail=detail, cycle=fields, controller={"champion": cycle.version},
        )  # fmt: skip

    def _promoted(self, state: ControllerState, now: float) -> Decision | None:
        config = self.config
        cycle = self.store.cycle(_current(state))
        if cycle.watch is None or cycle.watch_started_at is None:
            return self._finish(now, "promoted", "done", "promoted without a watch", {})
        champion = self.registry.champion(self.model)
        if champion is None or champion.version != cycle.version:
            tests.ensure_stopped(config.event_log, cycle.watch, now=now, actor=config.actor)
            move = self._own_move(cycle)
            if move is not None and move.action == "rollback":
                # Killed inside the rollback, after the alias moved: record it, do not redo it.
                why = move.reason.removeprefix(f"watch {cycle.watch}: ")
                return self._rolled_back(now, move.version, f"{why} (resumed after a restart)", {})
            found = "none" if champion is None else champion.version
            reason = f"the champion was moved outside the controller (to {found}): watch stopped"
            return self._finish(now, "promoted", "watch_ended", reason, {})
        verdict = tests.judge_watch(config.event_log, cycle.watch, config.experiment, config.watch)
        elapsed = now - cycle.watch_started_at
        detail = {"elapsed_s": elapsed, **verdict.to_dict()}
        self.store.set_last_check(self.model, {"at": now, "watch": detail}, now)
        if verdict.call == "rollback":
            move = self.registry.rollback(
                self.model, actor=config.actor, reason=f"watch {cycle.watch}: {verdict.reason}"
            )
            tests.ensure_stopped(config.event_log, cycle.watch, now=now, actor=config.actor)
            return self._rolled_back(now, move.version, verdict.reason, detail)
        if elapsed < config.watch.duration_s:
            return None
        tests.ensure_stopped(config.event_log, cycle.watch, now=now, actor=config.actor)
        reason = f"watch passed after {elapsed:.0f} s: {verdict.reason}"
        return self._finish(now, "promoted", "watch_passed", reason, detail)

    def _rolled_back(self, now: float, version: str, why: str, detail: dict[str, Any]) -> Decision:
        reason = f"{why}; champion rolled back to version {version}"
        return self.store.transition(
            self.model, "promoted", "rolled_back", at=now, action="rollback", reason=reason,
            detail=detail, cycle={"outcome": "rolled_back", "finished_at": now},
            controller={"champion": version},
        )  # fmt: skip

    def _own_move(self, cycle: Cycle) -> AliasMove | None:
        """The champion's last move if this controller made it for ``cycle``'s test or watch.

        The registry's audit is the record of what the controller did before a kill: a
        promotion names the test, a rollback the watch, both with the controller's actor.
        """
        moves = self.registry.audit(self.model, "champion")
        if not moves or moves[-1].actor != self.config.actor:
            return None
        move = moves[-1]
        if move.action == "promote" and cycle.experiment is None and cycle.champion is None:
            return move if move.reason.endswith(FIRST_MODEL) else None
        if move.action == "promote" and cycle.experiment and cycle.version == move.version:
            return move if move.reason.startswith(f"test {cycle.experiment}: ") else None
        if move.action == "rollback" and cycle.watch:
            return move if move.reason.startswith(f"watch {cycle.watch}: ") else None
        return None

    def _close(self, state: ControllerState, now: float) -> Decision:
        cycle = self.store.cycle(_current(state))
        reason = f"cycle {cycle.id} closed: {cycle.outcome or state.state}"
        return self.store.transition(
            self.model, state.state, "idle", at=now, action="close", reason=reason,
            cycle={"finished_at": cycle.finished_at or now},
        )  # fmt: skip

    # ----------------------------------------------------------------- helpers
    def _reject(
        self,
        now: float,
        expected: Any,
        action: str,
        reason: str,
        detail: dict[str, Any],
        fields: dict[str, Any],
    ) -> Decision:
        return self.store.transition(
            self.model, expected, "rejected", at=now, action=action, reason=reason, detail=detail,
            cycle={**fields, "outcome": "rejected", "finished_at": now},
        )  # fmt: skip

    def _finish(
        self, now: float, expected: Any, action: str, reason: str, detail: dict[str, Any]
    ) -> Decision:
        """A promoted cycle ends: the champion serves alone from ``now`` (drift's reference)."""
        return self.store.transition(
            self.model, expected, "idle", at=now, action=action, reason=reason, detail=detail,
            cycle={"outcome": "promoted", "finished_at": now},
            controller={"champion_since": now},
        )  # fmt: skip


def _current(state: ControllerState) -> int:
    if state.cycle is None:
        raise RuntimeError(f"the controller is {state.state} without a cycle (a corrupted state)")
    return state.cycle


def _training_detail(outcome: TrainingOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "steps": outcome.step_summary(),
        "seconds": round(outcome.seconds, 2),
        "version": outcome.version,
        "folder": outcome.folder,
        "new": outcome.new,
        "gate": outcome.gate,
        "error": outcome.error,
    }
