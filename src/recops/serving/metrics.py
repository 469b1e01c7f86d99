"""Prometheus metrics of one server, on a registry of its own.

Each app gets a fresh :class:`prometheus_client.CollectorRegistry` instead of the
process-global one, so tests (and a process hosting several apps) can create as many
apps as they like without "duplicated timeseries" errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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


class ServerMetrics:
    """The server's counters and histograms.

    Attributes
    ----------
    registry:
        The registry all metrics below live in; ``GET /metrics`` renders it.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "recops_requests",
            "HTTP requests by endpoint, model version and status code.",
            ["endpoint", "model_version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recops_request_latency_seconds",
            "Time from request received to response sent, by endpoint and model version.",
            ["endpoint", "model_version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "recops_errors",
            "Requests answered with an error, by endpoint and kind (4xx client, 5xx server).",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.stage = Histogram(
            "recops_stage_seconds",
            "In-process time of each stage of a recommendation.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "recops_batch_queue_seconds",
            "Time a request waited in the dynamic batcher's queue.",
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "recops_batch_size",
            "Requests per user-tower batch.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.events = Counter(
            "recops_events_ingested",
            "Events durably written to the event log, by event type.",
            ["event"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "recops_model_serving",
            "1 for the model version being served.",
            ["model", "version"],
            registry=self.registry,
        )

    def observe_request(self, endpoint: str, version: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(endpoint, version, str(status)).inc()
        self.latency.labels(endpoint, version).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, "5xx" if status >= 500 else "4xx").inc()

    def observe_batch(self, size: int, queue_seconds: Sequence[float]) -> None:
        """Record one dynamic batch (the batcher's observer)."""
        self.batch_size.observe(size)
        for seconds in queue_seconds:
            self.queue_time.observe(seconds)

    def set_serving(self, name: str, version: str) -> None:
        """Mark ``name``/``version`` as the one served (and no other)."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
