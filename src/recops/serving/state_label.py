"""The reply label of a recommendation served without the user's live history.

When the online state cannot be read (Redis unreachable, see
:mod:`recops.serving.state_redis`), the state marks the request
(:func:`mark_unavailable`) and :class:`StateLabel` adds
``X-Recops-Online-State: unavailable`` to its reply, so a client, a load balancer's
log or a test can tell such a reply from a fresh one. Apart from Redis, so that the
embedded server imports nothing of it.
"""

from __future__ import annotations

import contextvars

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["STATE_HEADER", "StateLabel", "mark_unavailable"]

#: The reply header of a recommendation served without the live history.
STATE_HEADER = "X-Recops-Online-State"

# Per request: each request runs in its own context (set and reset by StateLabel).
_MISSED: contextvars.ContextVar[bool] = contextvars.ContextVar("recops_state_missed", default=False)


def mark_unavailable() -> None:
    """Label the current request's reply: its live history could not be read."""
    _MISSED.set(True)


class StateLabel:
    """Adds ``X-Recops-Online-State: unavailable`` to replies of marked requests.

    Pure ASGI (no task, no stream, so the mark set while handling the request is
    seen when its reply starts); installed only with the Redis state.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _MISSED.set(False)

        async def label(message: Message) -> None:
            if message["type"] == "http.response.start" and _MISSED.get():
                headers = [*message.get("headers", []), (b"x-recops-online-state", b"unavailable")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, label)
        finally:
            _MISSED.reset(token)
