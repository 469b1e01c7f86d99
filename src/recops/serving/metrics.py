"""Prometheus metrics of one server, on a registry of its own.

Each app gets a fresh :class:`prometheus_client.CollectorRegistry` instead of the
process-global one, so tests (and a process hosting several apps) can create as many
apps as they like without "duplicated timeseries" errors.

The per-request series (request latency and count, stage times) are
:class:`HotHistogram` collectors: a recommendation makes eight observations, and
``prometheus_client``'s histogram takes a lock and walks every bucket on each (about
70 µs per request in a profile). Here an observation is a binary search and two
additions; rendering does the cumulative sums once per scrape.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Latency buckets from 0.25 ms to 2.5 s: the interesting range of a real-time server.
_LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_STAGE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)
_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: A worker's gauges older than this are left out of the merged metrics (it is gone).
GAUGES_LIVE_S = 5.0


class _HotFamily(Collector):
    """Labelled series kept as plain lists of numbers: what the hot collectors share."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        registry: CollectorRegistry,
        width: int,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._width = width
        self._children: dict[tuple[str, ...], list[float]] = {}
        registry.register(self)

    def child(self, *values: str) -> list[float]:
        """The numbers of one label set (created at zero)."""
        key = tuple(values)
        numbers = self._children.get(key)
        if numbers is None:
            if len(key) != len(self.labels):
                raise ValueError(f"{self.name} takes labels {self.labels} (got {key})")
            numbers = self._children[key] = [0.0] * self._width
        return numbers


class HotHistogram(_HotFamily):
    """A labelled Prometheus histogram for the request path, cheap to observe.

    Observed from the event loop's thread only (the handlers and middleware run
    there), so the counts need no lock.

    Parameters
    ----------
    name, documentation:
        Metric name (without ``_bucket``/``_sum``/``_count``) and help text.
    labels:
        Label names; :meth:`child` takes their values in this order.
    buckets:
        Upper bounds, increasing; ``+Inf`` is added.
    registry:
        Where to register.
    counter:
        Optional ``(name, documentation)`` of a counter with the same labels that
        counts the observations (e.g. requests beside their latency), derived at
        scrape time.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
        counter: tuple[str, str] | None = None,
    ) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError(f"buckets must be non-empty and increasing (got {buckets!r})")
        self.bounds = tuple(float(b) for b in buckets)
        self.counter = counter
        # A child is [bucket counts..., +Inf count, sum].
        super().__init__(name, documentation, labels, registry, len(self.bounds) + 2)

    def observe_into(self, counts: list[float], value: float) -> None:
        """Add one observation to a :meth:`child`."""
        counts[bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def observe(self, value: float, *values: str) -> None:
        """Add one observation to the label set ``values``."""
        self.observe_into(self.child(*values), value)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        counter = (
            None if self.counter is None else CounterMetricFamily(*self.counter, labels=self.labels)
        )
        for key, counts in list(self._children.items()):
            cumulative, total = [], 0.0
            for bound, n in zip((*self.bounds, float("inf")), counts[:-1], strict=True):
                total += n
                cumulative.append((_bound_text(bound), total))
            family.add_metric(list(key), cumulative, counts[-1])
            if counter is not None:
                counter.add_metric(list(key), total)
        yield family
        if counter is not None:
            yield counter

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        if self.counter is not None:
            yield CounterMetricFamily(*self.counter, labels=self.labels)


class HotCounter(_HotFamily):
    """A labelled Prometheus counter for the request path: a list item to add to.

    As :class:`HotHistogram`: incremented from the event loop's thread only, so no
    lock (``prometheus_client``'s counter takes one per increment).

    Parameters
    ----------
    name, documentation:
        Metric name (without ``_total``) and help text.
    labels:
        Label names; :meth:`child` takes their values in this order.
    registry:
        Where to register.
    """

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry
    ) -> None:
        # A child is [count]: ``child(...)[0] += n`` counts.
        super().__init__(name, documentation, labels, registry, 1)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, count in list(self._children.items()):
            family.add_metric(list(key), count[0])
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)


def _bound_text(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ServerMetrics:
    """The server's counters and histograms.

    Attributes
    ----------
    registry:
        The registry all metrics below live in; ``GET /metrics`` renders it.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = HotHistogram(
            "recops_request_latency_seconds",
            "Time from request received to response sent, by endpoint, model version "
            "and status code.",
            ["endpoint", "model_version", "status"],
            _LATENCY_BUCKETS,
            self.registry,
            counter=(
                "recops_requests",
                "HTTP requests by endpoint, model version and status code.",
            ),
        )
        self.errors = Counter(
            "recops_errors",
            "Requests answered with an error, by endpoint and kind (4xx client, 5xx server).",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.stage = HotHistogram(
            "recops_stage_seconds",
            "In-process time of each stage of a recommendation.",
            ["stage"],
            _STAGE_BUCKETS,
            self.registry,
        )
        # Hot: the batcher observes them on every request (prometheus_client's
        # histograms take a lock per observation).
        self.queue_time = HotHistogram(
            "recops_batch_queue_seconds",
            "Time a request waited in the dynamic batcher's queue.",
            [],
            _STAGE_BUCKETS,
            self.registry,
        )
        self.batch_size = HotHistogram(
            "recops_batch_size",
            "Requests per user-tower batch.",
            [],
            (1, 2, 4, 8, 16, 32, 64, 128),
            self.registry,
        )
        self.events = Counter(
            "recops_events_ingested",
            "Events durably written to the event log, by event type.",
            ["event"],
            registry=self.registry,
        )
        self.exposures = HotCounter(
            "recops_exposures",
            "Served slates logged as exposures, by experiment and variant (`none` outside one).",
            ["experiment", "variant"],
            self.registry,
        )
        self.exposure_errors = Counter(
            "recops_exposure_errors",
            "Exposures the event log failed to store.",
            registry=self.registry,
        )
        self.event_refusals = Counter(
            "recops_event_refusals",
            "POST /v1/events refused before reading the body, by reason (`token`: no valid "
            "write token, 401; `quota`: over the client's quota, 429).",
            ["reason"],
            registry=self.registry,
        )
        self.admin_refusals = Counter(
            "recops_admin_refusals",
            "Admin API requests refused before they ran, by status and reason "
            "(`missing_token`, `wrong_token`: 401; `disabled`: 403, no admin token set).",
            ["status", "reason"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "recops_model_serving",
            "1 for the model version being served.",
            ["model", "version"],
            registry=self.registry,
        )
        self.model_load = Histogram(
            "recops_model_load_seconds",
            "Time to load a model version and build its index, by model and outcome "
            "(`loaded` or `failed`).",
            ["model", "outcome"],
            buckets=_LOAD_BUCKETS,
            registry=self.registry,
        )
        self.model_load_failures = Counter(
            "recops_model_load_failures",
            "Model versions that failed to load (the serving one kept serving), by model.",
            ["model"],
            registry=self.registry,
        )
        # RSS, open files, CPU seconds, ... of this process (Linux /proc), as
        # process_resident_memory_bytes, process_open_fds, process_cpu_seconds_total.
        ProcessCollector(registry=self.registry)

    def observe_request(self, endpoint: str, version: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.latency.observe(seconds, endpoint, version, str(status))
        if status >= 400:
            self.errors.labels(endpoint, "5xx" if status >= 500 else "4xx").inc()

    def observe_batch(self, size: int, queue_seconds: Sequence[float]) -> None:
        """Record one dynamic batch (the batcher's observer)."""
        self.batch_size.observe(size)
        queued = self.queue_time.child()  # looked up once for the batch
        for seconds in queue_seconds:
            self.queue_time.observe_into(queued, seconds)

    def observe_load(self, name: str, version: str, seconds: float, ok: bool) -> None:
        """Record one model load (the model manager's observer)."""
        self.model_load.labels(name, "loaded" if ok else "failed").observe(seconds)
        if not ok:
            self.model_load_failures.labels(name).inc()

    def watch(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add metrics computed at scrape time (e.g. the online state's size)."""
        self.registry.register(_Computed(collect))

    def set_serving(self, name: str, version: str) -> None:
        """Mark ``name``/``version`` as the one served (and no other)."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def snapshot(self, worker: str) -> dict[str, Any]:
        """This process's samples for :func:`render_merged`, marked with its worker."""
        return {"worker": worker, "written": time.time(), "families": self.samples()}

    def samples(self) -> list[dict[str, Any]]:
        """Every metric's samples as JSON-ready dicts."""
        return [
            {
                "name": family.name,
                "type": family.type,
                "documentation": family.documentation,
                "unit": family.unit,
                "samples": [[s.name, s.labels, s.value] for s in family.samples],
            }
            for family in self.registry.collect()
        ]


class _Computed(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A one-sample gauge family (for :meth:`ServerMetrics.watch`)."""
    return GaugeMetricFamily(name, documentation, value=value)


def counter(
    name: str, documentation: str, values: float | dict[str, float], label: str | None = None
) -> Metric:
    """A counter family: one value, or one per value of ``label`` (for ``watch``)."""
    if not isinstance(values, dict):
        return CounterMetricFamily(name, documentation, value=values)
    family = CounterMetricFamily(name, documentation, labels=[label or "label"])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def render_merged(snapshots: Iterable[dict[str, Any]], now: float | None = None) -> bytes:
    """One exposition from several workers' :meth:`ServerMetrics.snapshot`.

    Counters and histograms (buckets, sums, counts) add up over every snapshot,
    dead workers' included, so they never go backwards. Gauges are per worker, with
    a ``worker`` label (a worker's RSS, its open files, the version it serves), and
    only from workers that wrote in the last :data:`GAUGES_LIVE_S`; ``_created``
    timestamps keep the earliest.
    """
    now = time.time() if now is None else now
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for snapshot in snapshots:
        worker = str(snapshot["worker"])
        live = now - float(snapshot["written"]) <= GAUGES_LIVE_S
        for family in snapshot["families"]:
            name = family["name"]
            gauge_family = family["type"] == "gauge"
            if gauge_family and not live:
                continue
            if name not in families:
                families[name] = Metric(
                    name, family["documentation"], family["type"], family["unit"]
                )
                values[name] = {}
            merged = values[name]
            for sample, labels, value in family["samples"]:
                if gauge_family:
                    labels = {**labels, "worker": worker}
                key = (sample, tuple(sorted(labels.items())))
                if key not in merged:
                    merged[key] = value
                elif sample.endswith("_created"):
                    merged[key] = min(merged[key], value)
                else:
                    merged[key] += value
    for name, metric in families.items():
        for (sample, labels), value in values[name].items():
            metric.add_sample(sample, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)
