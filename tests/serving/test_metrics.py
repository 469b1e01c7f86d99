"""The request-path histogram and counter against prometheus_client's own on the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from recops.serving.metrics import HotCounter, HotHistogram

BUCKETS = (0.001, 0.01, 0.1)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    """``(sample name, le or "")`` -> value, for the samples of one metric."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name.startswith(name) and s.labels.get("stage", "a") == "a":
                out[(s.name, s.labels.get("le", ""))] = s.value
    return out


def test_hot_histogram_renders_what_prometheus_client_would() -> None:
    values = np.random.default_rng(0).exponential(0.01, size=500)
    values[:3] = (0.001, 0.01, 0.1)  # on the bounds: `le` is inclusive
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hot = HotHistogram("t_seconds", "doc", ["stage"], BUCKETS, ours, counter=("t_calls", "doc"))
    reference = Histogram("t_seconds", "doc", ["stage"], buckets=BUCKETS, registry=theirs)
    for v in values:
        hot.observe(float(v), "a")
        reference.labels("a").observe(float(v))
    hot.observe(1.0, "b")  # another label set stays apart
    got, want = _samples(ours, "t_seconds"), _samples(theirs, "t_seconds")
    assert set(got) == {k for k in want if not k[0].endswith("_created")}
    for key, value in got.items():
        assert value == pytest.approx(want[key]), key
    text = generate_latest(ours).decode()
    assert 't_calls_total{stage="a"} 500.0' in text
    assert 't_calls_total{stage="b"} 1.0' in text


def test_hot_histogram_refuses_bad_buckets_and_labels() -> None:
    with pytest.raises(ValueError, match="increasing"):
        HotHistogram("x", "doc", ["a"], (0.1, 0.01), CollectorRegistry())
    hot = HotHistogram("y", "doc", ["a", "b"], BUCKETS, CollectorRegistry())
    with pytest.raises(ValueError, match=r"takes labels \('a', 'b'\)"):
        hot.observe(0.5, "only-one")


def test_hot_counter_renders_what_prometheus_client_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hot = HotCounter("t_exposures", "doc", ["experiment", "variant"], ours)
    reference = Counter("t_exposures", "doc", ["experiment", "variant"], registry=theirs)
    child = hot.child("exp", "a")
    for _ in range(7):
        child[0] += 1
        reference.labels("exp", "a").inc()
    hot.child("none", "none")[0] += 2
    reference.labels("none", "none").inc(2)
    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    with pytest.raises(ValueError, match=r"takes labels \('experiment', 'variant'\)"):
        hot.child("only-one")


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_merged_workers_render_what_one_process_would() -> None:
    # Two workers' metrics, summed, against one process that saw every observation.
    from recops.serving.metrics import ServerMetrics, render_merged

    first, second, single = ServerMetrics(), ServerMetrics(), ServerMetrics()
    # Powers of two: sums are exact whatever the order of addition.
    observations = [
        ("/v1/recommend", "m/1", 200, 2.0**-9),
        ("/v1/recommend", "m/1", 200, 2.0**-6),
        ("/v1/events", "none", 422, 2.0**-10),
        ("/v1/recommend", "m/1", 500, 2.0**-2),
    ]
    for i, obs in enumerate(observations):
        worker = first if i % 2 else second
        for metrics in (worker, single):
            metrics.observe_request(*obs)
            metrics.stage.observe(obs[3] / 8, "ann")
            metrics.events.labels("click").inc(i + 1)
    for metrics in (first, second, single):
        metrics.set_serving("m", "1")
    merged = render_merged([first.snapshot("0"), second.snapshot("1")]).decode()

    # Counters and histograms add up (label sets come in first-seen order: compare
    # lines as sets); process counters (CPU seconds) differ between processes.
    def summed(text: str) -> set[str]:
        return {
            line
            for line in text.splitlines()
            if line.startswith("recops_")
            and "_created" not in line
            and not line.startswith("recops_model_serving")
        }

    assert summed(merged) == summed(single.render().decode())
    assert 'recops_events_ingested_total{event="click"} 10.0' in merged
    # Gauges are per worker: what each serves, each one's memory.
    for worker in ("0", "1"):
        assert f'recops_model_serving{{model="m",version="1",worker="{worker}"}} 1.0' in merged
        assert f'process_resident_memory_bytes{{worker="{worker}"}}' in merged


def test_a_gone_workers_gauges_leave_but_its_counts_stay() -> None:
    import time

    from recops.serving.metrics import GAUGES_LIVE_S, ServerMetrics, render_merged

    alive, gone = ServerMetrics(), ServerMetrics()
    for metrics in (alive, gone):
        metrics.events.labels("click").inc()
        metrics.set_serving("m", "1")
    old = gone.snapshot("1")
    old["written"] = time.time() - GAUGES_LIVE_S - 1
    merged = render_merged([alive.snapshot("0"), old]).decode()
    assert 'recops_events_ingested_total{event="click"} 2.0' in merged
    assert 'worker="0"' in merged and 'worker="1"' not in merged


def test_metric_names_follow_the_prometheus_conventions(tmp_path: Path) -> None:
    """Counters end in _total, times in _seconds, sizes in _bytes; one namespace."""
    from fastapi.testclient import TestClient

    from recops.serving.app import create_app
    from recops.serving.settings import ServerSettings

    from .fakes import load_fake, write_fake

    write_fake(tmp_path / "models" / "news" / "1")
    settings = ServerSettings(
        model_repository=tmp_path / "models", event_log_path=tmp_path / "events.sqlite3"
    )
    with TestClient(create_app(settings, loader=load_fake)) as client:
        client.post("/v1/recommend", json={"user_id": "u1"})
        text = client.get("/metrics").text
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
    for name, kind in families.items():
        assert name.startswith(("recops_", "process_", "python_")), name
        assert name == name.lower() and " " not in name
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds") or name == "recops_batch_size", name
        if "bytes" in name or "memory" in name:
            assert name.endswith("_bytes"), name
    for wanted in (
        "process_resident_memory_bytes",
        "process_open_fds",
        "recops_model_load_seconds",
        "recops_model_load_failures_total",
        "recops_online_state_bytes",
        "recops_online_state_users",
    ):
        assert wanted in families, wanted
    assert 'recops_model_load_seconds_count{model="news",outcome="loaded"} 1.0' in text
