"""One server process: the app under uvicorn, with the connection limits of the settings.

Both ``recops serve`` (one process) and each worker of ``--workers N`` run
:func:`serve`. uvicorn's own limits are set from the settings (``keep_alive_s``,
``backlog``, the trusted proxies), and what uvicorn lacks comes from
:mod:`recops.serving.connections` (header and body deadlines, the connection cap).
The open-file limit is raised to its hard limit, and the cap kept below it, so
that connections can never take the files the event log and the models need.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from recops.serving.connections import ConnectionPolicy
from recops.serving.logs import configure_logging
from recops.serving.settings import ServerSettings

log = logging.getLogger("recops.serving")

#: Open files kept for everything but connections (event log, models, logs, run folder).
RESERVED_FILES = 256
#: After a drain, how long connections accepted last have to send their first request.
LAST_REQUESTS_S = 1.0


def connection_budget(wanted: int) -> int:
    """Raise the soft open-file limit to the hard one; the connections that fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + RESERVED_FILES)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit we have
    fits = max(1, soft - RESERVED_FILES)
    if wanted > fits:
        log.warning(
            "max_connections %d does not fit the open-file limit %d: capping at %d "
            "(raise `ulimit -n` to allow more)",
            wanted,
            soft,
            fits,
        )
    return min(wanted, fits)


def uvicorn_config(
    app: FastAPI, settings: ServerSettings, policy: ConnectionPolicy
) -> uvicorn.Config:
    """The uvicorn configuration of one server process."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=policy.protocol(),
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
        backlog=settings.backlog,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        log_config=None,  # configure_logging does it, for uvicorn's loggers too
        access_log=False,  # recops.access instead, with the request id
        timeout_graceful_shutdown=5,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain before the shutdown.

    On the first SIGTERM (or SIGINT) the server turns not-ready (``/readyz``
    answers 503, so a load balancer moves traffic away) and keeps serving for
    ``drain_s`` seconds; every reply in that time carries ``Connection: close``,
    so clients finish their request and take their next one elsewhere instead of
    sending it on a connection about to close. Then uvicorn's own shutdown runs
    (it stops accepting, waits for the requests in flight, runs the lifespan's
    end). A second signal shuts down at once.

    Parameters
    ----------
    config:
        The uvicorn configuration.
    app:
        The application; ``app.state.draining`` becomes True at the first signal.
    policy:
        The connections' policy; drained connections stop being kept alive.
    drain_s:
        Seconds to keep serving after the first signal (0: none).
    """

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, policy: ConnectionPolicy, drain_s: float
    ) -> None:
        super().__init__(config)
        self.app = app
        self.policy = policy
        self.drain_s = drain_s
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is not None or self.drain_s <= 0:
            super().handle_exit(sig, frame)
            return
        # A signal handler: only set flags here, the main loop acts on them.
        self._drain_until = time.monotonic() + self.drain_s
        self.app.state.draining = True
        self.policy.draining = True
        log.warning("signal %d: not ready, draining for %.1f s before closing", sig, self.drain_s)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._drain_until is not None:
            # Stop accepting first, then let the connections accepted last send the
            # request they opened for: closing them at once would fail it.
            for server in self.servers:
                server.close()
            deadline = time.monotonic() + LAST_REQUESTS_S
            while self.policy.awaiting_first_request() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        await super().shutdown(sockets)


def serve(
    app: FastAPI, settings: ServerSettings, sockets: list[socket.socket] | None = None
) -> bool:
    """Run ``app`` until stopped; whether it started (False: its start-up failed).

    Parameters
    ----------
    app:
        The application (:func:`recops.serving.app.create_app`).
    settings:
        Where to listen, the connection limits and the drain.
    sockets:
        Listening sockets made by the caller (the workers' own ``SO_REUSEPORT``
        sockets); ``settings.host``/``port`` otherwise.
    """
    configure_logging(settings)
    policy = ConnectionPolicy(
        connection_budget(settings.max_connections),
        settings.header_timeout_s,
        settings.body_timeout_s,
    )
    app.state.connections = policy
    server = DrainingServer(uvicorn_config(app, settings, policy), app, policy, settings.drain_s)
    server.run(sockets=sockets)
    return server.started
