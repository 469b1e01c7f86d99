"""Worker processes for ``recops serve --workers N``, one listening socket each.

uvicorn's own ``--workers`` shares one socket between the workers, and asyncio
accepts every connection pending when it wakes: the few keep-alive connections of
a client pool often all land on one worker while the others idle (seen with 8
connections: 8/0 in two of six runs, 1,267-1,493 instead of about 2,000 req/s).
Here each worker binds its own ``SO_REUSEPORT`` socket, and the kernel spreads
connections over them. The supervisor restarts a worker that dies (with a backoff),
kills and replaces one that hangs (its heartbeat through the run folder stopped),
and stops them all on SIGINT/SIGTERM; the workers share state through the event
log and the run folder (:mod:`recops.serving.workers`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from recops.serving.settings import ServerSettings
from recops.serving.workers import WorkerGroup, heartbeat_path, last_beat

log = logging.getLogger("recops.serving")

#: Exit status of a worker whose server did not start (as uvicorn's).
STARTUP_FAILURE = 3
#: How often the supervisor looks at its workers.
CHECK_S = 0.5


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


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker(host: str, port: int, index: int) -> None:
    from recops.serving.app import create_app, settings_from_env
    from recops.serving.server import serve

    _die_with_parent()
    sock = _listener(host, port)
    settings = settings_from_env().model_copy(update={"worker_index": index})
    if not serve(create_app(settings), settings, sockets=[sock]):
        sys.exit(STARTUP_FAILURE)


class RestartPolicy:
    """When to start a worker again after it exited: exponential backoff.

    The ``n``-th consecutive failure waits ``min(max_s, base_s * 2 ** (n - 1))``
    seconds; a worker that served (was ready) for ``healthy_s`` seconds clears the
    count. Without it, a worker failing at start was restarted every 0.5 s forever.

    Parameters
    ----------
    base_s, max_s:
        First and longest wait.
    healthy_s:
        Ready this long, a worker's earlier failures are forgiven.
    """

    def __init__(self, base_s: float = 0.5, max_s: float = 30.0, healthy_s: float = 30.0) -> None:
        if not 0 < base_s <= max_s:
            raise ValueError(f"need 0 < base_s <= max_s (got {base_s!r}, {max_s!r})")
        self.base_s = base_s
        self.max_s = max_s
        self.healthy_s = healthy_s
        self.failures = 0

    def failed(self) -> float:
        """One more consecutive failure; seconds to wait before the next start."""
        self.failures += 1
        return float(min(self.max_s, self.base_s * 2 ** (self.failures - 1)))

    def ready_for(self, seconds: float) -> None:
        """The current worker has been ready this long."""
        if seconds >= self.healthy_s:
            self.failures = 0


class _Slot:
    """One worker position of the group: its current process and restart state."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.start_after = 0.0
        self.restarts = RestartPolicy()
        #: Whether its last process exited before its server started.
        self.failed_start = False


def run_workers(settings: ServerSettings) -> int:
    """Serve the app of ``RECOPS_SERVER_SETTINGS`` from ``settings.workers`` processes.

    Runs until SIGINT/SIGTERM. A worker that dies is started again after a backoff
    (:class:`RestartPolicy`); a worker whose heartbeat stopped for
    ``worker_timeout_s`` (or that is not ready ``worker_start_timeout_s`` after its
    start) is killed (SIGKILL) and replaced. A failed start stops the group only
    if no worker ever started: then the settings cannot work, and retrying would
    only hide it.

    Parameters
    ----------
    settings:
        The settings the workers read (``run_dir`` set).

    Returns
    -------
    int
        The exit status: 0, or :data:`STARTUP_FAILURE` when no worker could start.
    """
    if settings.run_dir is None:
        raise ValueError("run_workers needs settings.run_dir (the run folder of the workers)")
    run_dir = settings.run_dir
    # Holding a bound, non-listening socket reserves the port for the workers' group
    # (and resolves port 0) without taking connections itself.
    reserve = _listener(settings.host, settings.port)
    host, port = settings.host, reserve.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    group = WorkerGroup(run_dir, pid=os.getpid())
    status = 0

    def start(slot: _Slot) -> None:
        slot.process = spawn.Process(target=_worker, args=(host, port, slot.index), daemon=False)
        slot.process.start()
        slot.started_at = time.monotonic()
        slot.ready_at = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    slots = [_Slot(i) for i in range(settings.workers)]
    ever_ready = False
    reaped: set[int] = set()  # dead workers whose reports are still to be dropped
    try:
        for slot in slots:
            start(slot)
        while not stop.wait(CHECK_S):
            for slot in slots:
                process = slot.process
                if process is None:
                    if time.monotonic() >= slot.start_after:
                        start(slot)
                    continue
                if process.is_alive():
                    _check_health(slot, settings)
                    ever_ready = ever_ready or slot.ready_at is not None
                    continue
                # Reaped: it must not be listed as serving any more.
                pid = process.pid or 0
                reaped.add(pid)
                heartbeat_path(run_dir, pid).unlink(missing_ok=True)
                failed_start = process.exitcode == STARTUP_FAILURE
                slot.failed_start = failed_start
                if not ever_ready and all(s.failed_start for s in slots):
                    log.error("no worker could start (exit %s): stopping", process.exitcode)
                    status = STARTUP_FAILURE
                    stop.set()
                    break
                wait = slot.restarts.failed()
                what = "failed to start" if failed_start else f"died (exit {process.exitcode})"
                log.warning("worker %s %s: starting another in %.1f s", pid, what, wait)
                slot.process = None
                slot.start_after = time.monotonic() + wait
            _forget(group, reaped)  # this round's dead, and any a locked folder kept
    finally:
        processes = [s.process for s in slots if s.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker drains, then shuts down
        for process in processes:
            process.join(timeout=settings.drain_s + 15)
            if process.is_alive():
                process.kill()
        group.close()
        reserve.close()
    return status


def _forget(group: WorkerGroup, reaped: set[int]) -> None:
    """Drop the reports of the reaped workers; what cannot be dropped now is tried again.

    The run folder's database can be locked beyond SQLite's busy timeout (seen once,
    on a loaded machine, right after a stopped worker was killed; the cause is not
    known). The supervisor must outlive that: a report it could not drop goes stale by
    itself within :data:`~recops.serving.workers.LIVE_S`, and is dropped at the
    next check.
    """
    for pid in sorted(reaped):
        try:
            group.forget(pid)
        except sqlite3.Error as exc:
            log.warning("could not drop dead worker %s's report yet (%s): will retry", pid, exc)
            return
        reaped.discard(pid)


def _check_health(slot: _Slot, settings: ServerSettings) -> None:
    """Kill a worker whose heartbeat stopped, or that takes too long to start."""
    process = slot.process
    assert process is not None and process.pid is not None
    assert settings.run_dir is not None
    beat = last_beat(settings.run_dir, process.pid)
    now = time.monotonic()
    if beat is not None and beat[1] == "ready":
        if slot.ready_at is None:
            slot.ready_at = now
        slot.restarts.ready_for(now - slot.ready_at)
    if beat is None or slot.ready_at is None:
        # Starting: imports, the model load and the log's replay happen before
        # uvicorn serves, and may take long on a big catalog.
        late = now - slot.started_at > settings.worker_start_timeout_s
        silent = beat is not None and time.time() - beat[0] > settings.worker_start_timeout_s
        if late or silent:
            log.error(
                "worker %s not ready %.0f s after its start: killing it",
                process.pid,
                now - slot.started_at,
            )
            os.kill(process.pid, signal.SIGKILL)
        return
    silence = time.time() - beat[0]
    if silence > settings.worker_timeout_s:
        log.error(
            "worker %s has not beaten for %.1f s (hung or stopped): killing it",
            process.pid,
            silence,
        )
        os.kill(process.pid, signal.SIGKILL)
