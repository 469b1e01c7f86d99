"""``GET /v1/models`` and the admin API that loads, switches and unloads versions."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import ServerContext, context
from recops.serving.coordination import propagate, switch_everywhere, worker_infos
from recops.serving.logs import AUDIT, request_fields
from recops.serving.repository import ModelNotFoundError
from recops.serving.routing import add_route, json_response, parse_body, parse_path
from recops.serving.schemas import (
    ModelRef,
    ModelsResponse,
    ModelVersion,
    Status,
    VersionPath,
    WorkerInfo,
)

audit = logging.getLogger(AUDIT)
T = TypeVar("T")

_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such model or version."},
    409: {"description": "The version failed to load; the old one keeps serving."},
}


def _version_info(ctx: ServerContext, name: str, version: str) -> ModelVersion:
    loaded = {(b.name, b.version): b for b in ctx.manager.loaded()}
    bundle = loaded.get((name, version))
    serving = ctx.manager.serving
    return ModelVersion(
        name=name,
        version=version,
        loaded=bundle is not None,
        serving=serving is not None and (serving.name, serving.version) == (name, version),
        n_items=None if bundle is None else bundle.index.n_items,
        index=None if bundle is None else bundle.index.kind,
        ivf_nprobe=None if bundle is None else bundle.index.nprobe,
        index_recall=None
        if bundle is None or bundle.index.tuning is None
        else round(bundle.index.tuning.recall, 4),
        load_seconds=None if bundle is None else round(bundle.load_seconds, 4),
    )


def models_response(ctx: ServerContext, workers: list[WorkerInfo] | None = None) -> Response:
    """The repository, the versions in memory, the served one (and the workers)."""
    on_disk = ctx.manager.repository.models()
    keys = {(n, v) for n, vs in on_disk.items() for v in vs}
    keys |= {(b.name, b.version) for b in ctx.manager.loaded()}
    serving = ctx.manager.serving
    return json_response(
        ModelsResponse(
            version_policy=ctx.settings.version_policy,
            serving=None if serving is None else _version_info(ctx, serving.name, serving.version),
            versions=[_version_info(ctx, n, v) for n, v in sorted(keys)],
            workers=workers,
        )
    )


async def models(request: Request) -> Response:
    """Versions in the repository, those in memory, and the one served (and workers)."""
    ctx = context(request)
    group = ctx.group
    return models_response(ctx, None if group is None else worker_infos(group, group.last_op()))


async def version_ready(request: Request) -> Response:
    """Whether this server has the version in memory, ready to serve (as Triton's).

    200 once it is loaded (served or not), 503 while it is not (never loaded, or
    loading now), 404 for a version the repository does not have. With several
    workers, the worker that answers speaks for itself.
    """
    ref = parse_path(VersionPath, request)
    ctx = context(request)
    if any((b.name, b.version) == (ref.name, ref.version) for b in ctx.manager.loaded()):
        return json_response(Status(status="ready", model=ref.name, version=ref.version))
    if not ctx.manager.repository.exists(ref.name, ref.version):
        raise ModelNotFoundError(
            f"no version {ref.version!r} of model {ref.name!r} in {ctx.manager.repository.url}"
        )
    detail = "not loaded: load it with POST /v1/admin/models/load"
    status = Status(status="not ready", model=ref.name, version=ref.version, detail=detail)
    return json_response(status, 503)


def _name(ctx: ServerContext, ref: ModelRef) -> str:
    if ref.name is not None:
        return ref.name
    serving = ctx.manager.serving
    return serving.name if serving is not None else ctx.manager.repository.default_name(None)


async def _audited(request: Request, action: str, name: str, version: str, call: Awaitable[T]) -> T:
    """Run an admin action and log who did what, and how it went (``recops.audit``)."""
    fields = {
        **request_fields(request),
        "action": action,
        "model": name,
        "version": version,
        "actor": "admin token",
    }
    client = fields["client"]
    start = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        audit.warning(
            "admin %s %s/%s from %s failed: %s",
            action,
            name,
            version,
            client,
            exc,
            extra={**fields, "outcome": "failed", "error": str(exc)},
        )
        raise
    seconds = round(time.perf_counter() - start, 3)
    audit.info(
        "admin %s %s/%s from %s done in %.3f s",
        action,
        name,
        version,
        client,
        seconds,
        extra={**fields, "outcome": "done", "seconds": seconds},
    )
    return result


async def load(request: Request) -> Response:
    """Load a version into memory without serving it."""
    ref = await parse_body(ModelRef, request)
    ctx = context(request)
    name = _name(ctx, ref)

    async def run() -> list[WorkerInfo] | None:
        await run_in_threadpool(ctx.manager.load, name, ref.version)
        return await propagate(ctx, "load", name, ref.version)

    return models_response(ctx, await _audited(request, "load", name, ref.version, run()))


async def switch(request: Request) -> Response:
    """Serve a version (loaded first if needed); the swap is atomic.

    With several workers, every worker loads the version first, then all switch at
    the same moment; a version that fails to load on any worker is switched nowhere.
    """
    ref = await parse_body(ModelRef, request)
    ctx = context(request)
    name = _name(ctx, ref)
    call = switch_everywhere(ctx, name, ref.version)
    _, workers = await _audited(request, "switch", name, ref.version, call)
    return models_response(ctx, workers)


async def apply_policy(request: Request) -> Response:
    """Serve what the version policy names now (e.g. a new latest version on disk)."""
    ctx = context(request)
    settings = ctx.settings
    # Resolved here once: every worker serves this very version, even if a newer
    # one lands meanwhile.
    name, version = await run_in_threadpool(
        ctx.manager.resolve_policy,
        settings.model_name,
        settings.version_policy,
        settings.pinned_version,
    )
    call = switch_everywhere(ctx, name, version)
    _, workers = await _audited(request, "apply-policy", name, version, call)
    return models_response(ctx, workers)


async def unload(request: Request) -> Response:
    """Free a loaded version that is not being served."""
    ref = await parse_body(ModelRef, request)
    ctx = context(request)
    name = _name(ctx, ref)

    async def run() -> list[WorkerInfo] | None:
        try:
            ctx.manager.unload(name, ref.version)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from exc
        return await propagate(ctx, "unload", name, ref.version)

    return models_response(ctx, await _audited(request, "unload", name, ref.version, run()))


def install(app: FastAPI) -> None:
    """Register ``GET /v1/models`` and the four ``POST /v1/admin/models/...`` routes."""
    add_route(app, "/v1/models", models, methods=["GET"], tags=["models"], response=ModelsResponse)
    add_route(
        app,
        "/v1/models/{name}/versions/{version}/ready",
        version_ready,
        methods=["GET"],
        tags=["models"],
        summary="Readiness of one model version",
        response=Status,
        path_params=VersionPath,
        responses={
            404: {"description": "No such model or version in the repository."},
            503: {"model": Status, "description": "The version is not loaded (yet)."},
        },
    )
    admin: dict[str, Any] = {
        "methods": ["POST"],
        "tags": ["admin"],
        "response": ModelsResponse,
        "responses": _ADMIN_ERRORS,
        "admin": True,
    }
    add_route(app, "/v1/admin/models/load", load, body=ModelRef, **admin)
    add_route(app, "/v1/admin/models/switch", switch, body=ModelRef, **admin)
    add_route(app, "/v1/admin/models/apply-policy", apply_policy, **admin)
    add_route(app, "/v1/admin/models/unload", unload, body=ModelRef, **admin)
