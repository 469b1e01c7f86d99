"""What every handler shares (:class:`ServerContext`) and the one way to reach it.

The lifespan of :func:`recops.serving.app.create_app` builds one context per app and
stores it on ``app.state``; handlers reach it with :func:`context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from recops.serving.batching import DynamicBatcher
from recops.serving.eventlog import EventLog
from recops.serving.experiments import ExperimentRuntime
from recops.serving.exposure_log import ExposureLogger
from recops.serving.follower import LogFollower
from recops.serving.index import IndexParams
from recops.serving.items import ItemUpdates
from recops.serving.loaded_model import LoadedModel
from recops.serving.metrics import ServerMetrics
from recops.serving.repository import ModelManager
from recops.serving.service import RecommendService
from recops.serving.settings import ServerSettings
from recops.serving.slates import SlateChooser
from recops.serving.state import UserStateStore
from recops.serving.workers import WorkerGroup

if TYPE_CHECKING:
    from recops.serving.registry_follower import AliasFollower
    from recops.serving.routes.recommend import ArmItem, ArmSlate


@dataclass
class ServerContext:
    """Everything the handlers share; one per app, created in the lifespan."""

    settings: ServerSettings
    manager: ModelManager
    state: UserStateStore
    event_log: EventLog
    metrics: ServerMetrics
    service: RecommendService
    batcher: DynamicBatcher[ArmItem, ArmSlate] | None
    follower: LogFollower
    experiments: ExperimentRuntime
    exposures: ExposureLogger | None
    slates: SlateChooser
    group: WorkerGroup | None = None
    last_error: str | None = None
    items: ItemUpdates | None = None
    #: The registry alias follower, when the server follows one (``follow_alias``).
    alias: AliasFollower | None = None

    def serving_label(self) -> str | None:
        bundle = self.manager.serving
        return None if bundle is None else f"{bundle.name}/{bundle.version}"

    def observe(self, stage: str, seconds: float) -> None:
        """Record the time one stage of one request took."""
        self.service.observe(stage, seconds)


def context(request: Request) -> ServerContext:
    """The context of the app serving ``request``."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def served_bundle(ctx: ServerContext, request: Request) -> LoadedModel:
    """The serving model version, captured once for the whole request.

    The version goes straight into the ASGI scope (what ``request.state`` wraps) so
    that the request guard labels the request's metrics with it.
    """
    bundle = ctx.manager.current()
    label_version(request, bundle)
    return bundle


def label_version(request: Request, bundle: LoadedModel) -> None:
    """Label the request's metrics with the version that served it."""
    request.scope.setdefault("state", {})["model_version"] = f"{bundle.name}/{bundle.version}"


def configure_threads(n: int) -> None:
    """Limit BLAS, OpenMP, FAISS and torch to ``n`` threads in this process.

    A single query is fastest on one thread (exact top-100 over 100k x 64 takes about
    1 ms on one thread and 8-16 ms on two on a 2-core machine); throughput comes
    from processes.
    """
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    faiss.omp_set_num_threads(n)
    torch.set_num_threads(n)


def index_params(settings: ServerSettings) -> IndexParams:
    """The FAISS build parameters the settings ask for."""
    return IndexParams(
        exact_max_items=settings.exact_index_max_items,
        ann_kind=settings.ann_kind,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_construction=settings.hnsw_ef_construction,
        hnsw_ef_search=settings.hnsw_ef_search,
        ivf_nlist=settings.ivf_nlist,
        ivf_nprobe=settings.ivf_nprobe,
        ivf_target_recall=settings.ivf_target_recall,
        ivf_tune_fetch=settings.rerank_candidates,
    )
