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

# Per request (set and reset by StateLabel): a box, not a flag, so that a mark made
# in a copy of the request's context (the dynamic batcher computes each request's
# state read in one, see recops.serving.routes.recommend) reaches its reply.
_MISSED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "recops_state_missed", default=None
)


def mark_unavailable() -> None:
    """Label the current request's reply: its live history could not be read."""
    box = _MISSED.get()
    if box is not None:
        box[0] = True


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
        box = [False]
        token = _MISSED.set(box)

        async def label(message: Message) -> None:
            if message["type"] == "http.response.start" and box[0]:
                headers = [*message.get("headers", []), (b"x-recops-online-state", b"unavailable")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, label)
        finally:
            _MISSED.reset(token)
