"""SIGTERM on a real ``recops serve``: not ready first, a drain, then the close; no request lost.

Clients keep requesting on keep-alive connections while the server is told to stop,
and behave as behind a load balancer: once ``/readyz`` said 503 they open no new
connection to this server, but keep using the ones they have. None of their
requests may fail, each open connection must be closed by a reply saying
``Connection: close``, and ``/readyz`` must say 503 while the server still answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recops.serving.process import ServerProcess

from .conftest import START, make_repository

DRAIN_S = 2.0


@pytest.fixture()
def server(tmp_path: Path, trained_artifact: Path) -> Iterator[ServerProcess]:
    repo = make_repository(tmp_path / "models", trained_artifact)
    env = {"RECOPS_DRAIN_S": str(DRAIN_S)}
    with ServerProcess(repo, tmp_path / "events.sqlite3", (), env) as process:
        yield process


def test_sigterm_turns_not_ready_drains_and_fails_no_request(server: ServerProcess) -> None:
    assert server.process is not None
    body = {"user_id": "u3", "k": 5, "now": START + 30 * 86400}
    failures: list[str] = []
    served = [0]
    closed = [0]
    readiness: list[int] = []
    gone = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            while True:
                try:
                    reply = client.post("/v1/recommend", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    return
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text}")
                served[0] += 1
                if reply.headers.get("connection") == "close" and 503 in readiness:
                    closed[0] += 1  # told to go elsewhere, as the balancer already knows
                    return

    def readiness_loop() -> None:
        while not gone.is_set():
            try:
                with httpx.Client(base_url=server.url, timeout=5.0) as client:
                    readiness.append(client.get("/readyz").status_code)
            except httpx.ConnectError:
                return
            time.sleep(0.1)

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    threads.append(threading.Thread(target=readiness_loop))
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    before = served[0]
    signalled = time.monotonic()
    server.process.terminate()
    code = server.process.wait(timeout=DRAIN_S + 15)
    took = time.monotonic() - signalled
    gone.set()
    for thread in threads:
        thread.join(timeout=15)
    assert before > 0 and served[0] > before, "requests were served during the drain"
    assert not failures, f"{len(failures)} requests failed: {failures[:3]}"
    assert closed[0] == 4, "each client's connection was closed by a reply, not cut"
    assert 503 in readiness and readiness[0] == 200, readiness
    assert readiness.index(503) < len(readiness), "not ready while still answering"
    assert DRAIN_S <= took < DRAIN_S + 10 and code == 0, (took, code)
