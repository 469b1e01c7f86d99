"""Each trigger fires when it should and says why; nothing fires when nothing changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.ct import CTConfig
from recops.ct.state import ControllerState
from recops.ct.triggers import check_triggers
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Event
from tests.ct.conftest import DAY, Site, add_clicks, ct_document

URI = "sqlite:///unused.db"  # the triggers never open the registry


def _state(**fields: object) -> ControllerState:
    values: dict[str, object] = {
        "model": "two_tower", "state": "idle", "cycle": None, "champion": "1",
        "champion_since": None, "last_training": None, "watermark": 0, "last_check": {},
        "updated_at": 0.0,
    }  # fmt: skip
    values.update(fields)
    return ControllerState(**values)  # type: ignore[arg-type]


def _config(site: Site, **triggers: object) -> CTConfig:
    document = ct_document(site, URI)
    document["triggers"] = {"drift": {"enabled": False}, **triggers}
    return CTConfig.model_validate(document)


def test_bootstrap_fires_without_a_champion_and_can_be_switched_off(site: Site) -> None:
    check = check_triggers(_config(site), _state(champion=None), site.end)
    assert check.kind == "bootstrap" and "no champion" in check.reason
    off = check_triggers(_config(site, bootstrap=False), _state(champion=None), site.end)
    assert not off.fired and off.findings["bootstrap"] == "off"


def test_schedule_fires_once_the_last_training_is_old_enough(site: Site) -> None:
    config = _config(site, schedule={"every_s": 3_600})
    assert check_triggers(config, _state(), site.end).kind == "schedule"  # never trained
    trained = _state(last_training=float(site.end))
    early = check_triggers(config, trained, site.end + 3_599)
    assert not early.fired and early.findings["schedule"] == "next in 1 s"
    due = check_triggers(config, trained, site.end + 3_600)
    assert due.kind == "schedule" and "last training 3600 s ago" in due.reason


def test_volume_counts_positive_events_after_the_last_snapshot(site: Site) -> None:
    config = _config(site, volume={"min_new_events": 30})
    log = SQLiteEventLog(site.event_log)
    watermark = log.last_id()
    log.close()
    state = _state(watermark=watermark, last_training=float(site.end))
    add_clicks(site, site.end + 10, 29)
    quiet = check_triggers(config, state, site.end + 100)
    assert not quiet.fired and quiet.findings["volume"] == {"new_events": 29, "min_new_events": 30}
    add_clicks(site, site.end + 20, 1, seed=2)
    loud = check_triggers(config, state, site.end + 100)
    assert loud.kind == "volume" and loud.reason.startswith("30 new click events")
    # Events of other types are not training data.
    log = SQLiteEventLog(site.event_log)
    log.append([Event("u1", "i1", "impression", 1.0, site.end + 30) for _ in range(50)])
    log.close()
    assert check_triggers(config, state, site.end + 100).findings["volume"]["new_events"] == 30


def test_min_interval_holds_every_trigger_back(site: Site) -> None:
    config = _config(site, min_interval_s=600, schedule={"every_s": 1})
    state = _state(champion=None, last_training=float(site.end))
    held = check_triggers(config, state, site.end + 599)
    assert not held.fired and held.reason.startswith("cooling down: 1 s")
    assert check_triggers(config, state, site.end + 600).kind == "bootstrap"


def _clicks(site: Site, start: int, n: int, items: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = [f"reader-{i}" for i in range(60)]
    stamps = np.sort(rng.integers(start, start + DAY, n))
    events = [
        Event(str(rng.choice(users)), str(rng.choice(items)), "click", 1.0, int(t)) for t in stamps
    ]
    log = SQLiteEventLog(site.event_log)
    log.append(events)
    log.close()


@pytest.mark.parametrize("shifted", [False, True])
def test_drift_compares_the_last_window_with_the_champions_first(site: Site, shifted: bool) -> None:
    catalog = pd.read_parquet(site.catalog)
    main = catalog["categories"].map(lambda c: str(c[0]))
    biggest = main.value_counts().index[0]
    everything = catalog["item_id"].astype(str).tolist()
    one_category = catalog.loc[main == biggest, "item_id"].astype(str).tolist()
    since = site.end + 3_600
    _clicks(site, since, 400, everything, seed=1)
    _clicks(site, since + DAY, 400, one_category if shifted else everything, seed=2)
    # Only the category mix is judged here: item ages grow with time on a fixed catalog.
    only_category = {
        "features": {
            name: {"retrain": False}
            for name in ("item_age_hours", "history_length", "served_score", "strategy")
        }
    }
    config = _config(site, drift={"monitor": only_category})
    state = _state(champion_since=float(since), last_training=float(since))
    early = check_triggers(config, state, since + 2 * DAY - 1)
    assert not early.fired and early.findings["drift"]["reason"].startswith("not judged before")
    check = check_triggers(config, state, since + 2 * DAY)
    feature = check.findings["drift"]["features"]["click_category"]
    if shifted:
        assert check.kind == "drift" and "click_category drifted" in check.reason
        assert feature["status"] == "drift" and feature["psi"] > 0.1
    else:
        assert not check.fired and check.findings["drift"]["reason"] == (
            "no drift that asks for retraining"
        )
        assert feature["status"] == "stable"
    assert check.findings["drift"]["reference"]["start"] == since
