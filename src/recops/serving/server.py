"""One server process: the app under uvicorn, with the connection limits of the settings.

Both ``recops serve`` (one process) and each worker of ``--workers N`` run
:func:`serve`. uvicorn's own limits are set from the settings (``keep_alive_s``,
``backlog``, the trusted proxies), and what uvicorn lacks comes from
:mod:`recops.serving.connections` (header and body deadlines, the connection cap).
The open-file limit is raised to its hard limit, and the cap kept below it, so
that connections can never take the files the event log and the models need.
"""

from __future__ import annotations

import logging
import resource
import socket

import uvicorn
from fastapi import FastAPI

from recops.serving.connections import ConnectionPolicy
from recops.serving.settings import ServerSettings

log = logging.getLogger("recops.serving")

#: Open files kept for everything but connections (event log, models, logs, run folder).
RESERVED_FILES = 256


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
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def serve(
    app: FastAPI, settings: ServerSettings, sockets: list[socket.socket] | None = None
) -> bool:
    """Run ``app`` until stopped; whether it started (False: its start-up failed).

    Parameters
    ----------
    app:
        The application (:func:`recops.serving.app.create_app`).
    settings:
        Where to listen and the connection limits.
    sockets:
        Listening sockets made by the caller (the workers' own ``SO_REUSEPORT``
        sockets); ``settings.host``/``port`` otherwise.
    """
    policy = ConnectionPolicy(
        connection_budget(settings.max_connections),
        settings.header_timeout_s,
        settings.body_timeout_s,
    )
    app.state.connections = policy
    server = uvicorn.Server(uvicorn_config(app, settings, policy))
    server.run(sockets=sockets)
    return server.started
