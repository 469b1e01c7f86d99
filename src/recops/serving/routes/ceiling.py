"""Two trivial routes returning a fixed list of ``k`` items: the framework's ceiling.

``/v1/ceiling`` uses the route class, reply shape and serialisation of
``/v1/recommend`` (the ceiling the benchmark judges against);
``/v1/ceiling/standard`` is the same reply from a route written the usual FastAPI
way (query parameter and response model handled by FastAPI), to show what the
direct route class of :mod:`recops.serving.routing` saves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.routing import add_route, json_response
from recops.serving.schemas import MAX_K, Recommendations


def _reply(k: int) -> Recommendations:
    return Recommendations.model_construct(
        items=[f"item{i}" for i in range(k)],
        scores=[1.0 / (i + 1) for i in range(k)],
        model="ceiling",
        version="0",
        strategy="personalized",
    )


def _query_k(request: Request) -> int:
    """``k`` from the query string (default 10), or 422 as FastAPI would answer."""
    raw = request.query_params.get("k", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_K:
        detail = [{"loc": ["query", "k"], "msg": f"k must be an int in 1..{MAX_K}", "input": raw}]
        raise RequestValidationError(detail)
    return int(raw)


async def ceiling(request: Request) -> Response:
    """A fixed list of ``k`` items, through a direct route."""
    return json_response(_reply(_query_k(request)))


def install(app: FastAPI) -> None:
    """Register both ceilings (hidden from the OpenAPI spec)."""
    add_route(
        app, "/v1/ceiling", ceiling, methods=["GET"], tags=["benchmark"], include_in_schema=False
    )

    # Deliberately the standard FastAPI way: the comparison point of the direct route.
    @app.get("/v1/ceiling/standard", include_in_schema=False, response_model=Recommendations)
    async def standard(k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> Recommendations:
        return _reply(k)
