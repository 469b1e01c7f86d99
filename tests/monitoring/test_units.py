"""Features, drift verdicts, config, online metrics, alerts and exports on hand-made logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.monitoring.alerts import ctr_alert, volume_alert
from recops.monitoring.config import DriftConfig, MonitorConfig, MonitorConfigError
from recops.monitoring.drift import DriftReport, detect_drift
from recops.monitoring.features import FeatureSample, Window, click_features, history_counts
from recops.monitoring.logs import LOGGED_EXPOSURE_COLUMNS, ServingLog, from_event_log
from recops.monitoring.monitor import monitor
from recops.monitoring.online import ALL_VERSIONS, NO_LATENCY, online_metrics, window_metrics
from recops.monitoring.prometheus import render_prometheus
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Event, Exposure


def _exposure(rid: str, t: int, unit: str, version: str, items: list[str], **context) -> Exposure:
    n = len(items)
    return Exposure(
        rid, t, unit, "m", version, {"kind": "greedy"}, items, [1.0] * n, [0.5] * n,
        context={"strategy": "personalized", **context},
    )  # fmt: skip


@pytest.fixture
def small_log(tmp_path) -> ServingLog:
    log = SQLiteEventLog(tmp_path / "e.sqlite3", synchronous="NORMAL")
    try:
        log.submit_exposures(
            [
                _exposure("r1", 100, "u1", "1", ["a", "b"]),
                _exposure("r2", 200, "u2", "1", ["b", "c"], strategy="cold_start"),
                _exposure("r3", 3_700, "u1", "2", ["a", "d"], latency_ms=4.0),
            ]
        ).result()
        log.append(
            [
                Event("u1", "a", "click", 1.0, 110, {"request_id": "r1"}),
                Event("u1", "a", "click", 1.0, 111, {"request_id": "r1"}),  # counts once
                Event("u2", "c", "click", 1.0, 210, {"request_id": "r2"}),
                Event("u1", "d", "click", 1.0, 3_710, {"request_id": "r3"}),
                Event("u3", "x", "view", 1.0, 3_720),
            ]
        )
        return from_event_log(log)
    finally:
        log.close()


def test_online_metrics_by_hand(small_log: ServingLog) -> None:
    metrics = online_metrics(small_log, bucket_s=3_600, catalog_size=8)
    t = metrics.table.set_index(["bucket_start", "version"])
    first = t.loc[(0, "1")]
    assert (first["requests"], first["impressions"], first["clicks"]) == (2, 4, 2)
    assert first["ctr"] == 0.5 and first["distinct_items"] == 3 and first["coverage"] == 3 / 8
    assert first["cold_start_share"] == 0.5 and first["events"] == 3
    later = t.loc[(3_600, ALL_VERSIONS)]
    assert later["events"] == 2 and later["clicks"] == 1 and later["latency_p50_ms"] == 4.0
    assert t.loc[(3_600, "2")]["events"] == 1
    assert np.isnan(first["latency_p50_ms"]) and metrics.notes == ()
    whole = window_metrics(small_log, catalog_size=8).set_index("version")
    assert whole.loc[ALL_VERSIONS, "requests"] == 3 and whole.loc[ALL_VERSIONS, "coverage"] == 0.5


def test_online_metrics_without_latency_says_so(small_log: ServingLog) -> None:
    early = small_log.between(0, 1_000)
    assert online_metrics(early).notes == (NO_LATENCY,)
    assert np.isnan(online_metrics(early).table["coverage"]).all()
    with pytest.raises(ValueError, match="`bucket_s` must be a positive int"):
        online_metrics(early, bucket_s=0)


def test_volume_alert(small_log: ServingLog) -> None:
    empty = small_log.between(10_000, 20_000)
    alert = volume_alert(empty)
    assert alert is not None and not alert.retrain and alert.kind == "volume"
    assert volume_alert(small_log) is None


def _log_of(ctr_by_user: dict[str, tuple[int, int]], t0: int, tag: str) -> ServingLog:
    rows, events = [], []
    for unit, (slates, clicks) in ctr_by_user.items():
        for j in range(slates):
            rid = f"{tag}-{unit}-{j}"
            rows.append(
                {"request_id": rid, "timestamp": t0 + j, "unit": unit, "experiment": None,
                 "variant": None, "model": "m", "version": "1", "policy": {"kind": "greedy"},
                 "items": ["a", "b"], "propensities": [1.0, 1.0], "scores": [0.0, 0.0],
                 "candidates": None, "candidate_scores": None, "sources": None, "context": None}
            )  # fmt: skip
            if j < clicks:
                events.append(("u", "a", "click", 1.0, t0 + j, rid))
    exposures = pd.DataFrame(rows, columns=list(LOGGED_EXPOSURE_COLUMNS))
    frame = pd.DataFrame(
        events, columns=["user_id", "item_id", "event", "value", "timestamp", "request_id"]
    )
    return ServingLog(exposures, frame)


def test_ctr_alert_fires_on_a_large_significant_fall() -> None:
    config = MonitorConfig(min_impressions=100)
    users = [f"u{k}" for k in range(300)]
    before = _log_of({u: (4, 2) for u in users}, 0, "a")  # CTR 0.25
    after = _log_of({u: (4, 1 if k % 4 else 0) for k, u in enumerate(users)}, 10, "b")
    alert = ctr_alert(before, after, config)
    assert alert is not None and alert.kind == "ctr" and alert.retrain
    assert "CTR fell" in alert.message
    assert ctr_alert(before, before, config) is None
    assert ctr_alert(before, after, MonitorConfig(min_impressions=100_000)) is None


def test_history_counts_by_hand() -> None:
    history = pd.DataFrame({"user_id": ["u", "u", "u", "v"], "timestamp": [0, 10, 20, 15]})
    clicks = pd.DataFrame({"user_id": ["u", "u", "v", "w"], "timestamp": [20, 31, 15, 5]})
    # u at 20: clicks at 0 and 10 within [0, 20); at 31: 20 within [11, 31).
    assert history_counts(clicks, history, 20).tolist() == [2, 1, 0, 0]


def test_click_features_without_catalog_and_unknown_items() -> None:
    clicks = pd.DataFrame({"user_id": ["u"], "item_id": ["z"], "timestamp": [5]})
    sample = FeatureSample(Window(0, 10, "t"))
    click_features(sample, clicks, clicks, None, history_window_s=100)
    assert set(sample.missing) == {"click_category", "item_age_hours"}
    catalog = pd.DataFrame({"item_id": ["a"], "categories": [["news"]], "publish_time": [0]})
    sample = FeatureSample(Window(0, 10, "t"))
    click_features(sample, clicks, clicks, catalog, history_window_s=100)
    assert sample.values["click_category"].tolist() == ["<unknown>"]
    assert "item_age_hours" in sample.missing


def _sample(values: dict[str, np.ndarray], versions: tuple[str, ...] = ()) -> FeatureSample:
    return FeatureSample(Window(0, 1, "t"), dict(values), {}, versions)


def test_verdicts_need_both_psi_and_test_and_enough_values() -> None:
    rng = np.random.default_rng(0)
    ref = {"item_age_hours": rng.normal(size=5_000), "history_length": rng.normal(size=50)}
    cur = {"item_age_hours": rng.normal(0.5, 1, size=5_000), "history_length": rng.normal(size=50)}
    report = detect_drift(_sample(ref, ("m/1",)), _sample(cur, ("m/2",)))
    age = report.feature("item_age_hours")
    assert age.drifted and age.test == "ks" and age.retrain
    assert report.feature("history_length").status == "insufficient"
    assert report.feature("served_score").status == "unavailable"
    assert report.should_retrain and report.reasons == (age.reason,)
    assert any("different model versions" in n for n in report.notes)
    # A tiny shift is significant at this size, but its PSI is below the threshold.
    tiny = detect_drift(
        _sample({"item_age_hours": rng.normal(size=200_000)}),
        _sample({"item_age_hours": rng.normal(0.03, 1, size=200_000)}),
    ).feature("item_age_hours")
    assert tiny.p_value < 1e-6 and tiny.status == "stable"


def test_feature_rules_and_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(1)
    config = DriftConfig(
        features={"item_age_hours": {"psi_threshold": 5.0}, "strategy": {"retrain": False}}
    )
    ref = {
        "item_age_hours": rng.normal(size=3_000),
        "strategy": np.array(["a"] * 900 + ["b"] * 100, dtype=object),
    }
    cur = {
        "item_age_hours": rng.normal(1, 1, size=3_000),
        "strategy": np.array(["a"] * 500 + ["b"] * 500, dtype=object),
    }
    report = detect_drift(_sample(ref), _sample(cur), config)
    assert report.feature("item_age_hours").status == "stable"
    assert report.feature("strategy").drifted and not report.should_retrain
    again = DriftReport.read_json(report.write_json(tmp_path / "d.json"))
    assert again == report


def test_config_errors_name_the_field(tmp_path) -> None:
    with pytest.raises(ValueError, match="did you mean `click_category`"):
        DriftConfig(features={"click_categry": {}})
    bad = tmp_path / "c.json"
    bad.write_text('{"alpha": 2}')
    with pytest.raises(MonitorConfigError, match="`alpha`"):
        MonitorConfig.from_file(bad)
    bad_toml = tmp_path / "c.toml"
    bad_toml.write_text("bucket_s = 60\n\nalpha = 2\n")
    with pytest.raises(MonitorConfigError, match=r"line 3, `alpha`"):
        MonitorConfig.from_file(bad_toml)
    good = tmp_path / "c.toml"
    good.write_text(
        "psi_threshold = 0.2\nbucket_s = 60\n[features.served_score]\nretrain = false\n"
    )
    loaded = MonitorConfig.from_file(good)
    assert loaded.rule("served_score") == (0.2, 0.01, False) and loaded.bucket_s == 60


def test_monitor_needs_a_reference_and_exports(small_log: ServingLog) -> None:
    with pytest.raises(ValueError, match="give the `reference` window"):
        monitor(small_log, current=Window(0, 4_000, "log"))
    report = monitor(
        small_log, current=Window(3_600, 7_200, "log"), reference=Window(0, 3_600, "log")
    )
    text = render_prometheus(report).decode()
    assert 'recops_monitor_requests{model="m",version="2"} 1.0' in text
    assert "recops_monitor_feature_drift" in text and "recops_monitor_should_retrain 0.0" in text
