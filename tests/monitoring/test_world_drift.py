"""On the world generator: an injected population drift is found, and none is found without."""

from __future__ import annotations

from recops.monitoring.config import MonitorConfig
from recops.monitoring.features import FEATURE_NAMES
from recops.monitoring.monitor import monitor
from tests.monitoring.conftest import LoggedWorld


def test_no_alarm_without_injected_drift(calm_world: LoggedWorld) -> None:
    w = calm_world
    report = monitor(w.log, current=w.current, reference=w.reference, catalog=w.catalog)
    assert [f.feature for f in report.drift.features] == list(FEATURE_NAMES)
    assert all(f.status == "stable" for f in report.drift.features), report.drift.reasons
    assert not report.drift.should_retrain and not report.should_retrain
    assert report.alerts == ()
    # With thousands of values the tests alone would alarm: the PSI is what holds them.
    assert report.drift.feature("click_category").p_value < 0.01


def test_injected_drift_is_found_in_the_shocked_category(shocked_world: LoggedWorld) -> None:
    w = shocked_world
    report = monitor(w.log, current=w.current, reference=w.reference, catalog=w.catalog)
    assert report.drift.should_retrain and report.should_retrain
    category = report.drift.feature("click_category")
    assert category.drifted and category.psi >= 0.1 and category.p_value < 1e-10
    shocked = w.world.items.category_names[w.world.config.shock_category]
    now, before = category.summary["current"], category.summary["reference"]
    gain = {k: now[k] - before[k] for k in now}
    assert max(gain, key=gain.__getitem__) == shocked
    assert any(r.startswith("click_category drifted") for r in report.reasons)
    assert [a.kind for a in report.alerts] == ["drift"] * len(report.drift.drifted)


def test_the_same_windows_before_the_shock_agree(shocked_world: LoggedWorld) -> None:
    # Days before the shock of the shocked world are the calm world's: no alarm there.
    w = shocked_world
    report = monitor(w.log, current=w.reference, reference=w.reference, catalog=w.catalog)
    assert all(f.psi == 0.0 for f in report.drift.features)
    assert not report.should_retrain


def test_reference_from_training_interactions(calm_world: LoggedWorld) -> None:
    w = calm_world
    training = w.interactions[w.interactions["timestamp"] < w.reference.end]
    report = monitor(
        w.log,
        current=w.current,
        reference=w.reference,
        training=training,
        catalog=w.catalog,
        config=MonitorConfig(),
    )
    assert (
        report.drift.reference.source == "training interactions"
        or report.drift.reference == w.reference
    )
    assert not report.should_retrain, report.reasons
    by_log = monitor(w.log, current=w.current, reference=w.reference, catalog=w.catalog)
    # The world's log holds the same clicks as its training data: the same numbers.
    assert report.drift.feature("click_category").psi == by_log.drift.feature("click_category").psi
