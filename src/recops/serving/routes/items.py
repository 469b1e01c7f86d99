"""``POST /v1/admin/items``: new items for the served versions, without retraining.

See :mod:`recops.serving.items` for how a version grows and what it costs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.items import CannotAddItemsError, follow_experiments
from recops.serving.logs import AUDIT, request_fields
from recops.serving.routing import add_route, json_response, parse_body
from recops.serving.schemas import ItemsAdded, ItemsRequest

audit = logging.getLogger(AUDIT)

_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "A loaded version's model cannot add items; nothing was changed."},
    503: {"description": "No version is loaded and no catalog file would keep the items."},
}


async def add_items(request: Request) -> Response:
    """Embed new items from their content and serve them, atomically per version.

    Every version this worker has loaded gains the items it does not know (ids it
    knows are left as they are); the reply comes once they serve them, experiments'
    variants included. With a catalog file (`catalog_updates_path`, and always with
    several workers) the items are first written to it: the other workers apply
    them within about half a second (`GET /v1/models` shows each version's
    `n_items`), and versions loaded later and restarted workers apply them too.
    An item is recommended, searched, shown as similar and counted in a user's
    history right away, except before its `publish_time`.
    """
    body = await parse_body(ItemsRequest, request)
    ctx = context(request)
    if ctx.items is None:
        raise HTTPException(503, "the server is starting: no item updates yet")
    start = time.perf_counter()
    try:
        versions, appended = await run_in_threadpool(ctx.items.add, body.items)
    except CannotAddItemsError as exc:
        raise HTTPException(409, str(exc)) from exc
    await follow_experiments(ctx.experiments)
    received = len({i.item_id for i in body.items})
    fields = request_fields(request)
    seconds = round(time.perf_counter() - start, 3)
    audit.info(
        "admin add-items: %d items from %s, %s in %.3f s",
        received,
        fields["client"],
        ", ".join(f"{v.name}/{v.version} +{v.added}" for v in versions) or "no version loaded",
        seconds,
        extra={
            **fields,
            "action": "add-items",
            "actor": "admin token",
            "items": received,
            "added": {f"{v.name}/{v.version}": v.added for v in versions},
            "outcome": "done",
            "seconds": seconds,
        },
    )
    return json_response(ItemsAdded(received=received, versions=versions, appended=appended))


def install(app: FastAPI) -> None:
    """Register ``POST /v1/admin/items``."""
    add_route(
        app,
        "/v1/admin/items",
        add_items,
        methods=["POST"],
        tags=["admin"],
        summary="Add new items to the served versions",
        body=ItemsRequest,
        response=ItemsAdded,
        responses=_ERRORS,
        admin=True,
    )
