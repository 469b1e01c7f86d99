"""``/healthz``, ``/readyz`` and ``/metrics``: what a load balancer and Prometheus read."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.coordination import worker_name
from recops.serving.metrics import render_merged
from recops.serving.routing import add_route, json_response
from recops.serving.schemas import Status


async def healthz(request: Request) -> Response:
    """The process is up."""
    return json_response(Status(status="ok"))


async def readyz(request: Request) -> Response:
    """Ready when a model is served and the event log takes writes, until the server drains."""
    if request.app.state.draining:
        detail = "shutting down: draining the open connections"
        return json_response(Status(status="not ready", detail=detail), 503)
    manager = context(request).manager
    bundle = manager.serving
    if bundle is None:  # none loaded, or the followed alias names none yet: `unserved` says
        return json_response(Status(status="not ready", detail=manager.unserved), 503)
    problem = await request.app.state.event_log_probe.problem()
    if problem is not None:
        detail = f"the event log cannot take writes: {problem}"
        return json_response(Status(status="not ready", detail=detail), 503)
    return json_response(Status(status="ready", model=bundle.name, version=bundle.version))


async def prometheus(request: Request) -> Response:
    """Prometheus text exposition (summed over the workers when there are several)."""
    ctx = context(request)
    if ctx.group is None:
        body = ctx.metrics.render()
    else:
        ctx.group.write_metrics(ctx.metrics.snapshot(worker_name(ctx)))
        body = render_merged(ctx.group.read_metrics())
    return Response(body, media_type="text/plain; version=0.0.4")


def install(app: FastAPI) -> None:
    """Register the operational routes."""
    operations = ["operations"]
    add_route(app, "/healthz", healthz, methods=["GET"], tags=operations, response=Status)
    add_route(
        app,
        "/readyz",
        readyz,
        methods=["GET"],
        tags=operations,
        response=Status,
        responses={
            503: {
                "model": Status,
                "description": "No model loaded yet (or the followed registry alias names "
                "none yet), the event log cannot take writes, or the server is shutting "
                "down (`detail` says which).",
            }
        },
    )
    text = "text/plain"
    add_route(app, "/metrics", prometheus, methods=["GET"], tags=operations, media_type=text)
