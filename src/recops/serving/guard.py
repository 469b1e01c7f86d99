"""The ASGI guard in front of every route: body size limits and request metrics."""

from __future__ import annotations

import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.metrics import ServerMetrics

_JSON = b"application/json"


class RequestGuard:
    """ASGI middleware: 413 for oversized bodies, and request metrics for every route.

    Pure ASGI rather than ``BaseHTTPMiddleware``, which costs a task and a stream
    per request. The endpoint label is the route template (``/v1/recommend``), or
    ``unmatched`` so random paths cannot blow up the label set.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        declared = content_length(scope)
        try:
            if declared is None:
                await self._reply(send, 400, "invalid Content-Length header")
                status[0] = 400
            elif declared > self.max_body_bytes:
                await self._reply(send, 413, self._too_large())
                status[0] = 413
            else:
                await self.app(scope, self._bounded(receive), send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            version = scope.get("state", {}).get("model_version", "none")
            self.metrics.observe_request(endpoint, version, status[0], time.perf_counter() - start)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"

    def _bounded(self, receive: Receive) -> Receive:
        # Chunked bodies carry no Content-Length: count bytes as they arrive.
        seen = [0]

        async def bounded() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        return bounded

    @staticmethod
    async def _reply(send: Send, status: int, detail: str) -> None:
        body = JSONResponse({"detail": detail}).body
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def content_length(scope: Scope) -> int | None:
    """The declared body size (0 if absent), or ``None`` when the header is invalid."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return 0
