"""Run ``recops serve`` as a child process on a loopback port (tests, benchmark, demo).

The child gets one BLAS/OpenMP thread (see :func:`recops.serving.app.configure_threads`)
and is stopped by its own pid, never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``recops serve --models REPO`` on ``127.0.0.1:<free port>``.

    Parameters
    ----------
    models:
        The model repository.
    event_log:
        SQLite event log file of the server.
    args:
        More ``recops serve`` options (``--version 2``, ``--batching``, ...).
    env:
        Extra environment variables (e.g. ``RECOPS_ADMIN_TOKEN``).
    cpus:
        Cores the server (and its workers) may run on, as ``taskset`` would pin it;
        any core when ``None``.
    replay:
        Accept any ``now`` (``RECOPS_REPLAY``): the tests, the benchmark and the demo
        drive the server with the world's time, which is not the server's clock.
        ``False`` gives the bounded clock of a server facing clients.

    The child stops without a drain (``RECOPS_DRAIN_S=0``) unless ``env`` sets one.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        models: str | Path,
        event_log: str | Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cpus: set[int] | None = None,
        replay: bool = True,
    ) -> None:
        self.port = free_port()
        self.cpus = cpus
        self.url = f"http://127.0.0.1:{self.port}"
        self.event_log = Path(event_log)
        # A file, not a pipe: a pipe nobody reads blocks the server once it fills.
        self.log_path = self.event_log.parent / f"recops-serve-{self.port}.log"
        self._cmd = [
            sys.executable,
            "-c",
            "from recops.cli import app; app()",
            "serve",
            "--models",
            str(models),
            "--event-log",
            str(event_log),
            "--port",
            str(self.port),
            *args,
        ]
        self._env = {
            **os.environ,
            **dict.fromkeys(_THREAD_VARS, "1"),
            "RECOPS_REPLAY": "true" if replay else "false",
            # No drain on stop: nothing routes traffic away from a test's server.
            "RECOPS_DRAIN_S": "0",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 120.0, wait_for: str = "/readyz") -> Self:
        """Start the child and wait until ``wait_for`` answers 200 (``/healthz``: up,
        ready or not, e.g. a server waiting for its registry alias)."""
        with open(self.log_path, "wb") as log:
            # A session of its own: kill() takes the workers of --workers N with it.
            self.process = subprocess.Popen(
                self._cmd,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if self.cpus is None else self._pin,
            )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log_path.read_text(errors="replace")
                raise RuntimeError(
                    f"recops serve exited with {self.process.returncode}:\n{output[-4000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}{wait_for}", timeout=1.0) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass  # not listening (or not ready) yet
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"recops serve: no 200 from {wait_for} after {ready_timeout_s} s")

    def _pin(self) -> None:
        os.sched_setaffinity(0, self.cpus or set())

    def kill(self) -> None:
        """SIGKILL the child and its workers: no shutdown hook runs (durability tests)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the child (graceful), SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> Self:
        # `with server.start(timeout):` must not start a second child on the same port.
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
