"""``GET /v1/experiments``: the experiments this server applies, and any variant falling back."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.routing import add_route, json_response
from recops.serving.schemas import ExperimentsResponse


async def experiments(request: Request) -> Response:
    """Running experiments as applied here: each variant's model version and policy.

    A variant whose version could not be loaded says why in `fallback`; its units
    are served (and logged) with the control's version and policy.
    """
    runtime = context(request).experiments
    return json_response(ExperimentsResponse(experiments=runtime.statuses(), error=runtime.error))


def install(app: FastAPI) -> None:
    """Register ``GET /v1/experiments``."""
    add_route(
        app,
        "/v1/experiments",
        experiments,
        methods=["GET"],
        tags=["experiments"],
        response=ExperimentsResponse,
    )
