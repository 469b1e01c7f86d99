"""``POST /v1/events``: feedback, durable before it is acknowledged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from fastapi import FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.eventlog import Event
from recops.serving.routing import add_route, json_response, parse_body
from recops.serving.schemas import EventIn, EventsAccepted, EventsRequest

log = logging.getLogger("recops.serving")


def _event(e: EventIn, now: int) -> Event:
    context_columns = {
        k: v
        for k, v in (
            ("position", e.position),
            ("propensity", e.propensity),
            ("request_id", e.request_id),
        )
        if v is not None
    }
    timestamp = e.timestamp if e.timestamp is not None else now
    return Event(e.user_id, e.item_id, e.event, e.value, timestamp, context_columns or None)


async def events(request: Request) -> Response:
    """Log feedback durably, then update the users' online state.

    The reply is sent only after the events are on disk; the very next
    ``/v1/recommend`` of the same user sees them.
    """
    body = await parse_body(EventsRequest, request)
    ctx = context(request)
    start = time.perf_counter()
    now = int(time.time())
    batch = [_event(e, now) for e in body.events]
    try:
        written = await asyncio.wrap_future(ctx.event_log.submit(batch))
    except Exception as exc:
        log.exception("event log write failed")
        raise HTTPException(503, f"the event log could not store the events: {exc}") from exc
    # Into the online state from the log, like events other workers wrote.
    ctx.follower.catch_up()
    for kind, count in Counter(e.event for e in batch).items():
        ctx.metrics.events.labels(kind).inc(count)
    ctx.observe("event_log", time.perf_counter() - start)
    return json_response(EventsAccepted(accepted=written))


def install(app: FastAPI) -> None:
    """Register ``POST /v1/events``."""
    add_route(
        app,
        "/v1/events",
        events,
        methods=["POST"],
        tags=["events"],
        body=EventsRequest,
        response=EventsAccepted,
        responses={503: {"description": "The event log could not store the events."}},
    )
