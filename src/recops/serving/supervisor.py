"""Worker processes for ``recops serve --workers N``, one listening socket each.

uvicorn's own ``--workers`` shares one socket between the workers, and asyncio
accepts every connection pending when it wakes: the few keep-alive connections of
a client pool often all land on one worker while the others idle (seen with 8
connections: 8/0 in two of six runs, 1,267-1,493 instead of about 2,000 req/s).
Here each worker binds its own ``SO_REUSEPORT`` socket, and the kernel spreads
connections over them. The supervisor restarts a worker that dies and stops them
all on SIGINT/SIGTERM; the workers share state through the event log and the run
folder (:mod:`recops.serving.workers`).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("recops.serving")

#: Exit status of a worker whose server did not start (as uvicorn's): not restarted.
STARTUP_FAILURE = 3


def reuse_port_supported() -> bool:
    """Whether this platform can give each worker a socket of its own."""
    return hasattr(socket, "SO_REUSEPORT")


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int) -> None:
    from recops.serving.app import create_app_from_env
    from recops.serving.server import serve

    sock = _listener(host, port)
    app = create_app_from_env()
    if not serve(app, app.state.settings, sockets=[sock]):
        sys.exit(STARTUP_FAILURE)


def run_workers(host: str, port: int, workers: int) -> None:
    """Serve the app of ``RECOPS_SERVER_SETTINGS`` from ``workers`` processes until stopped.

    Parameters
    ----------
    host, port:
        Where to listen (port 0: a free port, the same for every worker).
    workers:
        Worker processes.
    """
    # Holding a bound, non-listening socket reserves the port for the workers' group
    # (and resolves port 0) without taking connections itself.
    reserve = _listener(host, port)
    port = reserve.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = spawn.Process(target=_worker, args=(host, port), daemon=False)
        process.start()
        return process

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    processes = [start() for _ in range(workers)]
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s failed to start: stopping", process.pid)
                    stop.set()
                    break
                log.warning(
                    "worker %s died (exit %s): restarting it", process.pid, process.exitcode
                )
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        reserve.close()
