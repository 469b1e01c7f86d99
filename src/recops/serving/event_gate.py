"""Who may write events, and how much: the write token and the per-client quota.

An ASGI middleware in front of ``POST /v1/events``, so that a refused request costs
neither a body read nor a parse:

1. **Write token** (``event_token``, ``RECOPS_EVENT_TOKEN``; optional). When set,
   the request must carry ``Authorization: Bearer <event_token>`` (the admin token
   is accepted too), else 401. Without it anyone who reaches the port may write
   events: keep it unset only behind a proxy that authenticates producers.
2. **Quota** per client: a token bucket of ``event_quota_bytes_per_s`` bytes of
   request body per second, bursts up to ``event_quota_burst_bytes`` (each request
   costs at least :data:`MIN_COST` bytes, so many tiny requests are limited too). A
   client is its token when it sent a valid one, else its address (as uvicorn
   sees it: behind a proxy, set ``forwarded_allow_ips`` so that it is the real
   client's). Over the quota: 429 with ``Retry-After`` (seconds), before the body is
   read. ``event_quota_bytes_per_s = 0`` turns the quota off.

Bytes rather than events: the cost is known from ``Content-Length`` before reading
the body, and it is what the parse and the log write cost (an event is ~80-300
bytes of JSON). A chunked body is charged :data:`MIN_COST` up front and the rest
once read.
"""

from __future__ import annotations

import hmac
import math

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.metrics import ServerMetrics
from recops.serving.quotas import ClientQuotas
from recops.serving.settings import ServerSettings

#: The route this gate guards.
EVENTS_PATH = "/v1/events"
#: Smallest charge of one request, in bytes.
MIN_COST = 512


def _bearer(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class EventGate:
    """ASGI middleware: write token, then per-client quota, for ``POST /v1/events``.

    Parameters
    ----------
    app:
        The wrapped application.
    settings:
        ``event_token``, ``admin_token`` and the quota settings.
    metrics:
        Counts refusals in ``recops_event_refusals_total{reason}``.
    """

    def __init__(self, app: ASGIApp, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.required = settings.event_token is not None
        self.tokens = {
            name: token.encode()
            for name, token in (("event", settings.event_token), ("admin", settings.admin_token))
            if token
        }
        rate = settings.event_quota_bytes_per_s
        self.quotas = (
            None if rate == 0 else ClientQuotas(rate, max(settings.event_quota_burst_bytes, 1))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != EVENTS_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        given = _bearer(scope)
        holder = None
        if given is not None:
            holder = next(
                (n for n, t in self.tokens.items() if hmac.compare_digest(given, t)), None
            )
        if self.required and holder is None:
            self.metrics.event_refusals.labels("token").inc()
            await _reply(
                send,
                401,
                "POST /v1/events needs the write token: Authorization: Bearer <RECOPS_EVENT_TOKEN>",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if self.quotas is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = f"token:{holder}" if holder else f"addr:{client[0] if client else 'unknown'}"
        declared = _content_length(scope)
        cost = max(MIN_COST, declared or 0)
        wait = self.quotas.admit(key, cost)
        if wait > 0:
            self.metrics.event_refusals.labels("quota").inc()
            retry = str(max(1, math.ceil(wait))).encode()
            await _reply(
                send,
                429,
                f"event quota exceeded: at most {self.quotas.rate:g} bytes of events per second "
                f"per client; retry after {retry.decode()} s",
                [(b"retry-after", retry)],
            )
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        seen = [0]

        async def counting() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counting, send)
        finally:
            if seen[0] > MIN_COST:
                self.quotas.charge(key, seen[0] - MIN_COST)


async def _reply(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = JSONResponse({"detail": detail}).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
