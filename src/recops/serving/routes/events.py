"""``POST /v1/events``: feedback, durable before it is acknowledged, stored once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.eventlog import Event, KeyReuseError, WriteKey
from recops.serving.routing import add_route, json_response, parse_body, parse_headers
from recops.serving.schemas import EventIn, EventsAccepted, EventsRequest, WriteHeaders

log = logging.getLogger("recops.serving")

#: Response header of a replayed answer (the name payment APIs use).
REPLAYED = "Idempotent-Replayed"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            REPLAYED: {
                "description": "`true` when this is the stored answer to an earlier request "
                "with the same `Idempotency-Key`.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        }
    },
    401: {
        "description": "The server requires the write token (`RECOPS_EVENT_TOKEN`) as "
        "`Authorization: Bearer <token>`, and it is missing or wrong.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    409: {"description": "The `Idempotency-Key` was used for other events within the window."},
    429: {
        "description": "The client's event quota is spent (see `event_quota_bytes_per_s`).",
        "headers": {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        },
    },
    503: {"description": "The event log could not store the events."},
}


def _event(e: EventIn, now: int) -> Event:
    context_columns = {
        k: v
        for k, v in (
            ("position", e.position),
            ("propensity", e.propensity),
            ("request_id", e.request_id),
            ("event_id", e.event_id),
        )
        if v is not None
    }
    timestamp = e.timestamp if e.timestamp is not None else now
    return Event(e.user_id, e.item_id, e.event, e.value, timestamp, context_columns or None)


def _write_key(key: str | None, body: EventsRequest) -> WriteKey | None:
    # The fingerprint of the validated body, not of its bytes: a retry that encodes
    # the same events differently (spacing, key order, defaults spelled out) matches.
    if key is None:
        return None
    return WriteKey(key, hashlib.sha256(body.model_dump_json().encode()).hexdigest())


async def events(request: Request) -> Response:
    """Log feedback durably, then update the users' online state.

    The reply is sent only after the events are on disk; the very next
    ``/v1/recommend`` of the same user sees them.

    Retries are stored once. With an `Idempotency-Key` header, a request repeated with
    the same key and the same events within the idempotency window (a day by default,
    `RECOPS_IDEMPOTENCY_WINDOW_S`) stores nothing and gets the first answer again, with
    `Idempotent-Replayed: true`, from whichever worker and across restarts; the same
    key with other events is a 409. An event with an `event_id` stored within the
    window is not stored again (`duplicates` counts them). Keys live in the event
    log's database, one window of them.
    """
    body = await parse_body(EventsRequest, request)
    headers = parse_headers(WriteHeaders, request)
    ctx = context(request)
    start = time.perf_counter()
    now = int(time.time())
    batch = [_event(e, now) for e in body.events]
    try:
        receipt = await asyncio.wrap_future(
            ctx.event_log.submit_once(batch, _write_key(headers.idempotency_key, body))
        )
    except KeyReuseError as exc:
        # 409: the request is fine, the key's earlier use is the server state it
        # conflicts with (a key whose first write failed was never stored: retry).
        raise HTTPException(409, f"{exc}: use a new key for new events") from None
    except Exception as exc:
        log.exception("event log write failed")
        raise HTTPException(503, f"the event log could not store the events: {exc}") from exc
    ctx.observe("event_log", time.perf_counter() - start)
    reply = json_response(EventsAccepted(accepted=receipt.accepted, duplicates=receipt.duplicates))
    if receipt.replayed:
        reply.headers[REPLAYED] = "true"
        return reply
    # Into the online state from the log, like events other workers wrote.
    ctx.follower.catch_up()
    skipped = set(receipt.skipped)
    written = Counter(e.event for n, e in enumerate(batch) if n not in skipped)
    for kind, count in written.items():
        ctx.metrics.events.labels(kind).inc(count)
    return reply


def install(app: FastAPI) -> None:
    """Register ``POST /v1/events``."""
    add_route(
        app,
        "/v1/events",
        events,
        methods=["POST"],
        tags=["events"],
        body=EventsRequest,
        header=WriteHeaders,
        response=EventsAccepted,
        responses=_RESPONSES,
    )
