"""User, item, text and category → items: recommend, similar, search and category routes.

Handlers are ``async`` and compute inline: on a small machine the hop to a thread
pool costs more than the millisecond of numpy work it would move.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import ServerContext, context, label_version, served_bundle
from recops.serving.experiments import Arm
from recops.serving.exposure_log import assignment_of, build_exposure, request_context
from recops.serving.routing import JSON, Endpoint, add_route, parse_body, parse_query
from recops.serving.schemas import (
    CategoryRequest,
    Recommendations,
    RecommendQuery,
    RecommendRequest,
    SearchRequest,
    SimilarRequest,
    recommendations_json,
)
from recops.serving.service import RecommendService, UserRequest
from recops.serving.slates import ServedSlate, SlateChooser

_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown item or category (the reply names it)."},
    503: {
        "description": "No model is served yet (none loaded, or the followed registry alias "
        "names none yet; `detail` says which): retry after `Retry-After` seconds."
    },
}
_TAGS = ["recommendations"]


def reply_response(ctx: ServerContext, recommendations: Recommendations) -> Response:
    """Serialise a reply, timed as the ``serialize`` stage."""
    start = time.perf_counter()
    body = recommendations.to_json()
    ctx.observe("serialize", time.perf_counter() - start)
    return Response(content=body, media_type=JSON)


#: One arm's slate for one request: what it shows, the strategy, the request's time.
ArmSlate = tuple[ServedSlate, str, int]


#: One arm of one request, with the request's context (see :func:`arm_slates`).
ArmItem = tuple[Arm, RecommendRequest, contextvars.Context]


def arm_slates(
    service: RecommendService, chooser: SlateChooser, items: list[ArmItem]
) -> list[ArmSlate | Exception]:
    """Each item's slate, stage by stage over the items: state, tower, ANN, re-rank, policy.

    One request is a batch of one; the dynamic batcher hands over the requests that
    arrived together (:mod:`recops.serving.batching`). An item that fails (a time
    out of bounds, an unknown category) gets its exception in its place. The state
    is read in each request's own context, where a backend marks a reply served
    without it (:mod:`recops.serving.state_label`).
    """
    out: list[ArmSlate | Exception | None] = [None] * len(items)
    staged: list[tuple[int, UserRequest, np.ndarray]] = []
    for i, (arm, body, own_context) in enumerate(items):
        try:
            user = own_context.run(service.prepare, arm.bundle, body)
            staged.append((i, user, service.encode(user)))
        except Exception as exc:
            out[i] = exc
    ranked = service.rank_many(
        [(user, vector, items[i][1], items[i][0].depth) for i, user, vector in staged]
    )
    for (i, user, _), found in zip(staged, ranked, strict=True):
        if isinstance(found, Exception):
            out[i] = found
            continue
        arm, body, _ = items[i]
        start = time.perf_counter()
        out[i] = (chooser.choose(arm, found, body.k), user.strategy, user.now)
        service.observe("policy", time.perf_counter() - start)
    return [slate for slate in out if slate is not None]


async def _arm_slate(ctx: ServerContext, arm: Arm, body: RecommendRequest) -> ArmSlate:
    """One arm's slate for the request, through the batcher when there is one."""
    item = (arm, body, contextvars.copy_context())
    if ctx.batcher is not None:
        return await ctx.batcher.submit(item)
    (slate,) = arm_slates(ctx.service, ctx.slates, [item])
    if isinstance(slate, Exception):
        raise slate
    return slate


async def recommend(request: Request, body: RecommendRequest) -> Response:
    """Assignment → state → user tower → ANN → re-rank → policy → exposure, for one user."""
    ctx = context(request)
    if ctx.group is not None:
        ctx.follower.poll()  # events another worker acknowledged
    plan = ctx.experiments.plan(body, ctx.manager.current())
    arm = plan.arms[0]
    label_version(request, arm.bundle)
    served, strategy, now = await _arm_slate(ctx, arm, body)
    if len(plan.arms) == 2:
        other, _, _ = await _arm_slate(ctx, plan.arms[1], body)
        start = time.perf_counter()
        served = ctx.slates.interleave((arm, plan.arms[1]), (served, other), body.k)
        ctx.observe("policy", time.perf_counter() - start)
    request_id = None
    if ctx.exposures is not None:
        start = time.perf_counter()
        request_id = ctx.exposures.request_id()
        exposure = build_exposure(
            request_id, now, plan, served, request_context(body, strategy, plan)
        )
        await ctx.exposures.log(exposure, assignment_of(plan, now))
        ctx.observe("exposure", time.perf_counter() - start)
    start = time.perf_counter()
    reply = recommendations_json(
        served.items,
        served.scores,
        arm.bundle.name,
        arm.bundle.version,
        strategy,
        request_id,
        plan.experiment,
        plan.variant,
    )
    ctx.observe("serialize", time.perf_counter() - start)
    return Response(content=reply, media_type=JSON)


async def recommend_post(request: Request) -> Response:
    """A known user, or an anonymous one sending recent item ids, in a JSON body."""
    return await recommend(request, await parse_body(RecommendRequest, request))


async def recommend_get(request: Request) -> Response:
    """The same as POST, from query parameters (list fields as repeated keys)."""
    return await recommend(request, parse_query(RecommendQuery, request))


def _task(model: type[BaseModel], serve: Callable[..., Recommendations]) -> Endpoint:
    """A POST handler: parse ``model``, call ``serve(service, body, bundle)``, reply."""

    async def endpoint(request: Request) -> Response:
        body = await parse_body(model, request)
        ctx = context(request)
        return reply_response(ctx, serve(ctx.service, body, served_bundle(ctx, request)))

    endpoint.__doc__ = serve.__doc__
    return endpoint


def install(app: FastAPI) -> None:
    """Register the four recommendation tasks."""
    common: dict[str, Any] = {"tags": _TAGS, "response": Recommendations, "responses": _MISSING}
    add_route(
        app,
        "/v1/recommend",
        recommend_post,
        methods=["POST"],
        summary="User → items",
        body=RecommendRequest,
        **common,
    )
    add_route(
        app,
        "/v1/recommend",
        recommend_get,
        methods=["GET"],
        summary="User → items (query parameters)",
        query=RecommendQuery,
        name="recommend_get",
        **common,
    )
    tasks: tuple[tuple[str, str, type[BaseModel], Callable[..., Recommendations]], ...] = (
        ("/v1/similar", "Item → similar items", SimilarRequest, RecommendService.similar),
        ("/v1/search", "Text → items", SearchRequest, RecommendService.search),
        ("/v1/category", "Category → items", CategoryRequest, RecommendService.category),
    )
    for path, summary, model, serve in tasks:
        add_route(
            app,
            path,
            _task(model, serve),
            methods=["POST"],
            summary=summary,
            body=model,
            name=path.rsplit("/", 1)[-1],
            **common,
        )
