"""A real ``recops serve`` process on 127.0.0.1: SIGKILL durability and atomic switches.

Each test is bounded in time: the server must be ready within ``READY_TIMEOUT``
seconds and every request has a timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recops.serving.eventlog import SQLiteEventLog
from recops.serving.process import ServerProcess

from .conftest import ADMIN_TOKEN, START, make_repository

READY_TIMEOUT = 60.0
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, trained_artifact: Path, second_artifact: Path
) -> Iterator[ServerProcess]:
    """One server for the module (start-up costs seconds); the SIGKILL test runs last."""
    tmp = tmp_path_factory.mktemp("process")
    repo = make_repository(tmp / "models", trained_artifact, ("1",))
    make_repository(repo, second_artifact, ("2",))
    process = ServerProcess(
        repo, tmp / "events.sqlite3", ("--version", "1"), {"RECOPS_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    with process.start(READY_TIMEOUT):
        yield process


def test_switch_under_load_fails_no_request(server: ServerProcess) -> None:
    body = {"user_id": "u3", "k": 10, "now": START + 30 * 86400}
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        expected = {"1": client.post("/v1/recommend", json=body).json()["items"]}
        client.post("/v1/admin/models/switch", json={"version": "2"}, headers=AUTH)
        expected["2"] = client.post("/v1/recommend", json=body).json()["items"]
        client.post("/v1/admin/models/switch", json={"version": "1"}, headers=AUTH)
    assert expected["1"] != expected["2"], "the two versions must differ to detect mixing"

    failures: list[str] = []
    replies: list[tuple[str, list[str]]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            while not stop.is_set():
                try:
                    reply = client.post("/v1/recommend", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code}: {reply.text}")
                    continue
                data = reply.json()
                replies.append((data["version"], data["items"]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as admin:
            for version in ("2", "1", "2"):
                time.sleep(0.3)
                reply = admin.post(
                    "/v1/admin/models/switch", json={"version": version}, headers=AUTH
                )
                assert reply.status_code == 200, reply.text
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert {v for v, _ in replies} == {"1", "2"}, "load must span the switches"
    mixed = [(v, items) for v, items in replies if items != expected[v]]
    assert not mixed, f"{len(mixed)} replies mixed two versions"


def test_acknowledged_events_survive_sigkill(server: ServerProcess) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5.0) as client:
            n = 0
            while not stop.is_set():
                ids = [f"w{worker}-{n}-{j}" for j in range(20)]
                events = [{"user_id": f"u{worker}", "item_id": i, "event": "click"} for i in ids]
                try:
                    reply = client.post("/v1/events", json={"events": events})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if reply.status_code == 200:
                    with lock:
                        acknowledged.extend(ids)
                n += 1

    workers = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 2000:
                break
        time.sleep(0.01)
    # Killed while requests are in flight: no shutdown hook, no flush.
    server.kill()
    stop.set()
    for w in workers:
        w.join(timeout=10)
    assert len(acknowledged) >= 2000, "the server acknowledged too few events to test"
    log = SQLiteEventLog(server.event_log)
    stored = {e.item_id for _, e in log.read(limit=10**7)}
    log.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
