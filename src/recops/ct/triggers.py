"""When to train: the first of bootstrap, schedule, volume and drift that fires.

Checked in order, at the controller's ``now``, after ``min_interval_s`` has passed
since the last training:

``bootstrap``
    There is no champion: nothing serves, nothing can be compared; train one.
``schedule``
    The last training was ``every_s`` or more ago (or there was none).
``volume``
    At least ``min_new_events`` positive events (the pipeline's ``split.events``)
    arrived since the last training's snapshot (event ids above its watermark).
``drift``
    :func:`recops.monitoring.monitor` says ``should_retrain`` (a feature drifted,
    or the CTR fell), comparing the last ``current_window_s`` of the server's log
    with the champion's first ``reference_window_s`` in service; judged only once
    the current window lies wholly after that reference window.

:func:`check_triggers` returns a :class:`TriggerCheck` with what fired (or why
nothing did) and each trigger's finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recops.ct.config import CTConfig, DriftTrigger
from recops.ct.state import ControllerState
from recops.ct.training import count_events


@dataclass(frozen=True)
class TriggerCheck:
    """The outcome of one check.

    Parameters
    ----------
    kind:
        The trigger that fired (``bootstrap``, ``schedule``, ``volume``, ``drift``),
        or None.
    reason:
        Why it fired, or why nothing did.
    findings:
        Each trigger's finding (JSON-ready), for the log and ``recops ct status``.
    """

    kind: str | None
    reason: str
    findings: dict[str, Any] = field(default_factory=dict)

    @property
    def fired(self) -> bool:
        """Whether a trigger fired."""
        return self.kind is not None


def _catalog(config: CTConfig) -> Any:
    from recops.data.loaders import read_catalog

    path = getattr(config.pipeline.source, "catalog", None)
    if not path or not Path(path).is_file():
        return None
    return read_catalog(path)[0]


def check_drift(
    config: CTConfig, drift: DriftTrigger, since: float | None, now: float
) -> tuple[bool, str, dict[str, Any]]:
    """``(should retrain, reason, finding)`` of the drift trigger (module docstring)."""
    from recops.monitoring import Window, monitor, read_serving_log
    from recops.postgres import is_postgres_url

    if since is None:
        return False, "no champion in service to compare with", {}
    start = int(since)
    reference = Window(start, start + drift.reference_window_s, "the champion's first window")
    end = int(now)
    if end - drift.current_window_s < reference.end:
        ready = reference.end + drift.current_window_s
        return False, f"not judged before {ready} (the reference window must end first)", {}
    if not is_postgres_url(config.event_log) and not Path(config.event_log).is_file():
        return False, f"{config.event_log}: no event log yet", {}
    current = Window(end - drift.current_window_s, end, "the last window")
    settings = drift.monitor
    log = read_serving_log(
        config.event_log, since=reference.start - settings.history_window_s, until=end
    )
    report = monitor(
        log, current=current, reference=reference, catalog=_catalog(config), config=settings
    )
    finding = {
        "reference": reference.to_dict(),
        "current": current.to_dict(),
        "features": {
            f.feature: {"status": f.status, "psi": f.psi, "p_value": f.p_value}
            for f in report.drift.features
        },
        "alerts": [a.to_dict() for a in report.alerts],
    }
    if report.should_retrain:
        return True, "; ".join(report.reasons), finding
    return False, "no drift that asks for retraining", finding


def check_triggers(config: CTConfig, state: ControllerState, now: float) -> TriggerCheck:
    """Whether to train now, and why (see the module docstring)."""
    triggers = config.triggers
    last = state.last_training
    if last is not None and now - last < triggers.min_interval_s:
        wait = triggers.min_interval_s - (now - last)
        return TriggerCheck(None, f"cooling down: {wait:.0f} s before another training may start")
    findings: dict[str, Any] = {}
    if state.champion is None:
        if triggers.bootstrap:
            return TriggerCheck("bootstrap", f"no champion of {config.model!r} yet: train one")
        findings["bootstrap"] = "off"
    if triggers.schedule is not None:
        every = triggers.schedule.every_s
        if last is None or now - last >= every:
            since = "never trained" if last is None else f"last training {now - last:.0f} s ago"
            return TriggerCheck("schedule", f"scheduled every {every:g} s: {since}")
        findings["schedule"] = f"next in {every - (now - last):.0f} s"
    if triggers.volume is not None:
        kinds = config.pipeline.split.events
        new = count_events(config.event_log, state.watermark, kinds)
        wanted = triggers.volume.min_new_events
        findings["volume"] = {"new_events": new, "min_new_events": wanted}
        if new >= wanted:
            return TriggerCheck(
                "volume",
                f"{new:,} new {'/'.join(kinds)} events since the last training (>= {wanted:,})",
                findings,
            )
    drift = triggers.drift
    if drift.enabled:
        retrain, reason, finding = check_drift(config, drift, state.champion_since, now)
        findings["drift"] = {"reason": reason, **finding}
        if retrain:
            return TriggerCheck("drift", f"the monitor asks for retraining: {reason}", findings)
    return TriggerCheck(None, "no trigger fired", findings)
