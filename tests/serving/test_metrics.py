"""The request-path histogram against prometheus_client's own on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from recops.serving.metrics import HotHistogram

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
    merged = render_merged([first.samples(), second.samples()])
    # Label sets come in first-seen order: compare the lines as sets.
    assert sorted(_without_created(merged)) == sorted(_without_created(single.render()))
    assert 'recops_events_ingested_total{event="click"} 10.0' in merged.decode()
