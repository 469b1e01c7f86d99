"""The HTTP server: :func:`create_app` wires settings, model, state and log into FastAPI.

Endpoints (OpenAPI at ``/docs``): ``/v1/recommend`` (GET and POST), ``/v1/similar``,
``/v1/search``, ``/v1/category``, ``POST /v1/events``, ``GET /v1/models``, the admin
API under ``/v1/admin/models/`` (bearer token), ``/healthz``, ``/readyz`` and
``/metrics``.

Where things are: the routes in :mod:`recops.serving.routes` (one module per group,
all registered through :func:`recops.serving.routing.add_route`), what they share in
:mod:`recops.serving.context`, the request pipeline in :mod:`recops.serving.service`,
the multi-worker duties in :mod:`recops.serving.coordination`. Two slow operations
leave the event loop: durable event writes (a writer thread; the handler awaits its
future) and model loads (a worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client.metrics_core import Metric

from recops.serving.backends import open_event_log, open_experiment_store, open_online_state
from recops.serving.bandit_feedback import BanditFeedback
from recops.serving.batching import DynamicBatcher
from recops.serving.clock import RequestClock, install_clock_errors
from recops.serving.context import ServerContext, configure_threads, index_params
from recops.serving.coordination import apply_pending, heartbeat_forever, sync_forever
from recops.serving.errors import install_error_handlers
from recops.serving.event_gate import EventGate
from recops.serving.eventlog import EventLog
from recops.serving.experiments import ExperimentRuntime, refresh_forever
from recops.serving.exposure_log import ExposureLogger
from recops.serving.guard import RequestGuard
from recops.serving.health import EventLogProbe
from recops.serving.items import ItemUpdates, catalog_path, follow_forever
from recops.serving.logs import RequestIds
from recops.serving.metrics import ServerMetrics, counter, gauge
from recops.serving.model_api import ModelLoader
from recops.serving.prefetch import prefetch_forever
from recops.serving.registry_follower import follow_alias
from recops.serving.repository import ModelManager, ModelRepository
from recops.serving.routes import install_routes
from recops.serving.routes.recommend import ArmItem, ArmSlate, arm_slates
from recops.serving.routing import install_openapi
from recops.serving.service import RecommendService
from recops.serving.settings import ServerSettings
from recops.serving.slates import SlateChooser
from recops.serving.startup import serve_at_start
from recops.serving.state import UserStateStore
from recops.serving.state_label import StateLabel
from recops.serving.workers import Heartbeat, WorkerGroup

#: Environment variable through which ``recops serve`` hands its settings to workers.
SETTINGS_ENV = "RECOPS_SERVER_SETTINGS"


def create_app(
    settings: ServerSettings,
    *,
    loader: ModelLoader | None = None,
    event_log: EventLog | None = None,
) -> FastAPI:
    """Build the server.

    Parameters
    ----------
    settings:
        Server configuration.
    loader:
        Loads a model directory; ``TwoTower.load`` by default.
    event_log:
        Event storage; by default the one the settings name (the SQLite
        ``event_log_path``, or PostgreSQL at ``event_log_url``: see
        :mod:`recops.serving.backends`). The app closes it on shutdown.

    Returns
    -------
    fastapi.FastAPI
        The application; the model loads in its lifespan (``/readyz`` says when).
    """
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        heartbeat = None
        if settings.run_dir is not None:
            # Beating from the start: the supervisor tells a slow start from a hang.
            heartbeat = Heartbeat(settings.run_dir)
            tasks.append(asyncio.create_task(heartbeat_forever(heartbeat)))
        ctx = await _start(settings, metrics, loader, event_log)
        app.state.ctx = ctx
        app.state.event_log_probe = EventLogProbe(ctx.event_log)
        metrics.watch(lambda: _resource_metrics(ctx.state, app))
        tasks.append(asyncio.create_task(prefetch_forever(ctx)))
        if ctx.items is not None and ctx.items.path is not None:
            tasks.append(asyncio.create_task(follow_forever(ctx.items, ctx.experiments)))
        if ctx.experiments.store is not None:
            await run_in_threadpool(ctx.experiments.refresh)
            learn = BanditFeedback(ctx.event_log, ctx.experiments).poll
            every = settings.experiment_refresh_s
            tasks.append(asyncio.create_task(refresh_forever(ctx.experiments, every, learn)))
        if ctx.group is not None:
            # A worker restarted by the supervisor catches up with the admin
            # operations of this run before it says it is ready.
            await apply_pending(ctx, ctx.group)
            tasks.append(asyncio.create_task(sync_forever(ctx, ctx.group)))
        tasks.extend(follow_alias(ctx))
        if heartbeat is not None:
            heartbeat.set_phase("ready")
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _stop(ctx)

    app = FastAPI(
        title="recops inference server",
        version="1",
        summary="Real-time recommendations from a two-tower model: user, item, text, category.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks ask three providers on every request
        # (about 10 µs); recops exports Prometheus metrics and request-id logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Added first, so it runs inside the guard (whose request metrics count its refusals).
    app.add_middleware(EventGate, settings=settings, metrics=metrics)
    app.add_middleware(RequestGuard, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    # Outermost: every log line of a request, the guard's included, carries its id.
    app.add_middleware(RequestIds, access_log=settings.access_log)
    if settings.state_url is not None:  # labels replies served while Redis is away
        app.add_middleware(StateLabel)
    app.state.settings = settings
    # Set by the server on SIGTERM (recops.serving.server): /readyz then says 503.
    app.state.draining = False
    install_error_handlers(app)
    install_clock_errors(app)
    install_routes(app, settings)
    install_openapi(app)
    return app


async def _start(
    settings: ServerSettings,
    metrics: ServerMetrics,
    loader: ModelLoader | None,
    event_log: EventLog | None,
) -> ServerContext:
    """Open the log, replay it into the online state, and load the served version."""
    configure_threads(settings.threads)
    log_store = event_log or open_event_log(settings)
    manager = ModelManager(
        ModelRepository(settings.model_repository, settings.model_cache),
        index_params(settings),
        loader,
        history_size=settings.history_size,
        prior_refresh_s=settings.prior_refresh_s,
        # A replay's requests compute their own window's prior: a simulation needs the
        # prior of the time it replays, not the nearest one computed.
        defer_prior=not settings.replay,
        on_load=metrics.observe_load,
    )
    # Every version applies the catalog file's new items as it loads.
    items = ItemUpdates(manager, catalog_path(settings))
    manager.prepare = items.prepare
    # Only items a loaded version knows take space in the online state.
    state, follower = open_online_state(settings, log_store, manager.known_item, metrics)
    service = RecommendService(
        state,
        rerank_candidates=settings.rerank_candidates,
        observer=_stage_observer(metrics),
        clock=RequestClock(None if settings.replay else settings.max_clock_skew_s),
    )
    slates = SlateChooser()
    batcher: DynamicBatcher[ArmItem, ArmSlate] | None = None
    if settings.batching:
        batcher = DynamicBatcher(
            functools.partial(arm_slates, service, slates),
            max_batch_size=settings.batch_max_size,
            max_delay_s=settings.batch_max_delay_ms / 1000.0,
            observer=metrics.observe_batch,
        )
    group = None if settings.run_dir is None else WorkerGroup(settings.run_dir)
    store = open_experiment_store(settings) if settings.experiments else None
    exposures = None
    if settings.log_exposures:
        exposures = ExposureLogger(log_store, metrics, sync=settings.exposure_sync)
    ctx = ServerContext(
        settings,
        manager,
        state,
        log_store,
        metrics,
        service,
        batcher,
        follower,
        ExperimentRuntime(store, manager),
        exposures,
        slates,
        group,
        items=items,
    )
    ctx.alias = await serve_at_start(ctx)
    # After the load: the replay keeps only the events on items the model knows.
    await run_in_threadpool(follower.warm, settings.warm_start_events)
    # What start-up made (imports, the model, the index) lives as long as the process:
    # out of the collector's sight, a full collection no longer walks ~400k objects
    # in the middle of a request (pauses of 70-200 ms were seen while items grew).
    gc.collect()
    gc.freeze()
    return ctx


async def _stop(ctx: ServerContext) -> None:
    if ctx.experiments.store is not None:
        ctx.experiments.store.close()
    if ctx.batcher is not None:
        await ctx.batcher.close()
    if ctx.group is not None:
        ctx.group.close()
    await run_in_threadpool(ctx.event_log.close)


def _resource_metrics(state: UserStateStore, app: FastAPI) -> Iterator[Metric]:
    """What the online state and the connections hold, read at each scrape."""
    yield gauge("recops_online_state_users", "Users in the online state.", len(state))
    yield gauge(
        "recops_online_state_bytes",
        "Estimated bytes of the online state (bounded by state_max_bytes).",
        state.bytes,
    )
    yield counter(
        "recops_online_state_evictions",
        "Users evicted from the online state to keep it within its bounds.",
        state.evicted,
    )
    policy = getattr(app.state, "connections", None)  # set by recops.serving.server
    if policy is not None:
        yield gauge(
            "recops_connections_waiting",
            "Open connections not inside a request (new, or idle between requests).",
            len(policy.waiting),
        )
        yield counter(
            "recops_connections_closed",
            "Connections closed by the server's limits, by reason.",
            policy.closed,
            "reason",
        )


def _stage_observer(metrics: ServerMetrics) -> Callable[[str, float], None]:
    stage = metrics.stage

    def observe(name: str, seconds: float) -> None:
        stage.observe_into(stage.child(name), seconds)

    return observe


def settings_from_env() -> ServerSettings:
    """The settings ``recops serve`` validated and wrote to ``RECOPS_SERVER_SETTINGS``."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set: start workers with `recops serve`")
    return ServerSettings.model_validate_json(raw)


def create_app_from_env() -> FastAPI:
    """The app of one worker of ``recops serve --workers N`` (a uvicorn factory)."""
    return create_app(settings_from_env())
