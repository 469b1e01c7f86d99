"""The time a request is served at: the server's clock, or a client's ``now`` within bounds.

A request may carry ``now`` (unix seconds) so that a replay of the past, or a
simulator driving the server with its world's time, gets what the server would have
served then. Left unbounded, that is an attack: a client stepping ``now`` a minute
into the future per request made every request fall into a new refresh window of the
item prior (26 ms instead of 1.5 ms each, and everyone's latency suffered). So a
``now`` must lie within the server clock ± ``max_clock_skew_s`` (a client's clock may
be a little off), and is refused with 422 naming the field otherwise; a request for a
window within the skew whose prior is not computed yet gets the nearest one computed,
and the prefetcher computes its own in the background, rate-limited
(:mod:`recops.serving.prefetch`). A server that replays (``replay = true``,
``RECOPS_REPLAY=true``: a simulation's own server, never one facing the public)
accepts any ``now``, and computes the prior of the replayed window on the request
that needs it first: a simulation needs the prior of the time it replays, and pays
for it itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response


class ClockSkewError(ValueError):
    """A request's ``now`` too far from the server's clock (answered with 422)."""

    def __init__(self, now: int, server: int, max_skew_s: int) -> None:
        super().__init__(
            f"now must be within {max_skew_s} s of the server clock ({server}); got {now}, "
            f"{now - server:+d} s away. To replay another time, run a server with "
            "replay = true (RECOPS_REPLAY=true)"
        )


@dataclass(frozen=True)
class RequestClock:
    """Resolves a request's time: the server's clock, or the request's own ``now``.

    Parameters
    ----------
    max_skew_s:
        Largest accepted distance between a request's ``now`` and the server clock;
        ``None`` accepts any ``now`` (replay, or in-process use as a library).
    """

    max_skew_s: int | None = None

    def __call__(self, now: int | None) -> int:
        """``now`` if given and within bounds, else the server clock; ClockSkewError if out."""
        server = int(time.time())
        if now is None:
            return server
        if self.max_skew_s is not None and abs(now - server) > self.max_skew_s:
            raise ClockSkewError(now, server, self.max_skew_s)
        return now


async def _skew_error(request: Request, exc: Exception) -> Response:
    # The shape of a validation error: `now` is a field of the body, or of the query.
    where = "query" if request.method == "GET" else "body"
    detail = [{"loc": [where, "now"], "msg": str(exc), "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)


def install_clock_errors(app: FastAPI) -> None:
    """Answer a :class:`ClockSkewError` with a 422 naming the ``now`` field."""
    app.add_exception_handler(ClockSkewError, _skew_error)
