"""``recops serve --workers 2``: events, admin switches and metrics reach every worker.

Which worker takes a connection is up to the kernel, so every request here opens a
connection of its own, and the checks hold whichever worker answers: an event
written by *another process* (this test, straight into the log) must be seen by
both; the admin reply lists each worker's own report.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recops.serving.eventlog import Event, SQLiteEventLog
from recops.serving.process import ServerProcess

from .conftest import ADMIN_TOKEN, START, make_repository

READY_TIMEOUT = 90.0
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOW = START + 30 * 86400


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, trained_artifact: Path, second_artifact: Path
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("workers")
    repo = make_repository(tmp / "models", trained_artifact, ("1",))
    make_repository(repo, second_artifact, ("2",))
    process = ServerProcess(
        repo,
        tmp / "events.sqlite3",
        ("--version", "1", "--workers", "2"),
        {"RECOPS_ADMIN_TOKEN": ADMIN_TOKEN, "RECOPS_WORKER_TIMEOUT_S": "2"},
    )
    with process.start(READY_TIMEOUT):
        _wait_for(process, lambda workers: len(workers) == 2, "two live workers")
        yield process


def _fresh(server: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (the kernel picks the worker)."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        return client.request(method, path, **kwargs)


def _workers(server: ServerProcess) -> list[dict[str, Any]]:
    reply = _fresh(server, "GET", "/v1/models")
    assert reply.status_code == 200, reply.text
    workers: list[dict[str, Any]] = reply.json()["workers"]
    return workers


def _wait_for(server: ServerProcess, done: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    workers: list[dict[str, Any]] = []
    while True:
        try:
            workers = _workers(server)
        except httpx.TransportError:
            # A connection the kernel queued on a killed worker's socket is reset
            # (SO_REUSEPORT gives each worker its own queue); ask again.
            workers = []
        if workers and done(workers):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s: {workers}")
        time.sleep(0.2)


def _recommend(server: ServerProcess, user: str) -> dict[str, Any]:
    reply = _fresh(server, "POST", "/v1/recommend", json={"user_id": user, "k": 5, "now": NOW})
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def test_every_worker_sees_events_whoever_wrote_them(server: ServerProcess) -> None:
    assert _recommend(server, "newcomer-1")["strategy"] == "cold_start"
    events = {"events": [{"user_id": "newcomer-1", "item_id": "i3", "event": "click"}]}
    assert _fresh(server, "POST", "/v1/events", json=events).status_code == 200
    # Another process (this test) writes straight into the shared log.
    log = SQLiteEventLog(server.event_log)
    try:
        log.append([Event("newcomer-2", "i5", "click", 1.0, NOW - 60)])
    finally:
        log.close()
    for _ in range(8):
        for user, clicked in (("newcomer-1", "i3"), ("newcomer-2", "i5")):
            reply = _recommend(server, user)
            assert reply["strategy"] == "personalized", (user, reply)
            assert clicked not in reply["items"]  # seen items are excluded


def test_metrics_sum_over_the_workers(server: ServerProcess) -> None:
    def served() -> float:
        text = _fresh(server, "GET", "/metrics").text
        pattern = r'recops_requests_total\{endpoint="/v1/recommend",[^}]*status="200"\} (\S+)'
        return sum(float(v) for v in re.findall(pattern, text))

    time.sleep(1.0)  # every worker has published its last snapshot
    before = served()
    for i in range(20):
        _recommend(server, f"u{i % 5}")
    time.sleep(1.0)
    assert served() - before == 20
    text = _fresh(server, "GET", "/metrics").text
    for worker in ("0", "1"):  # each worker's own memory and files, by its index
        assert f'process_resident_memory_bytes{{worker="{worker}"}}' in text
        assert f'process_open_fds{{worker="{worker}"}}' in text


def test_a_switch_flips_every_worker_at_once(server: ServerProcess) -> None:
    """Replies never mix versions: no old version is served after the first new one."""
    target = {"1": "2", "2": "1"}[_recommend(server, "u1")["version"]]
    replies: list[tuple[float, float, str]] = []  # (sent, received, version)
    stop = threading.Event()

    def hammer() -> None:
        # A keep-alive connection stays on one worker: eight of them reach both
        # (the kernel spreads connections), with a few ms between two requests.
        body = {"user_id": "u1", "k": 5, "now": NOW}
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    version = client.post("/v1/recommend", json=body).json()["version"]
                except httpx.TransportError:
                    continue
                replies.append((sent, time.monotonic(), version))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        reply = _fresh(
            server, "POST", "/v1/admin/models/switch", json={"version": target}, headers=AUTH
        )
        assert reply.status_code == 200, reply.text
        assert {w["state"] for w in reply.json()["workers"]} == {"up_to_date"}
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    first_new = min(received for _, received, v in replies if v == target)
    late_old = [sent - first_new for sent, _, v in replies if v != target and sent > first_new]
    assert not late_old, f"old version served {max(late_old):.3f} s after the new one"
    assert len({v for _, _, v in replies}) == 2, "the load must span the switch"


def test_admin_switch_reaches_every_worker_and_survives_a_restart(server: ServerProcess) -> None:
    reply = _fresh(server, "POST", "/v1/admin/models/switch", json={"version": "2"}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    workers = reply.json()["workers"]
    assert len(workers) == 2
    assert all(w["up_to_date"] and w["serving"] == "news/2" and not w["error"] for w in workers)
    assert {_recommend(server, "u1")["version"] for _ in range(10)} == {"2"}

    # A worker that dies is restarted by the supervisor and replays the switch.
    victim = workers[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    _wait_for(
        server,
        lambda ws: len(ws) == 2 and victim not in {w["pid"] for w in ws},
        "restarted worker",
    )
    _wait_for(
        server,
        lambda ws: all(w["serving"] == "news/2" and w["up_to_date"] for w in ws),
        "restarted worker serving version 2",
    )
    assert {_recommend(server, "u1")["version"] for _ in range(10)} == {"2"}


def test_a_hung_worker_is_killed_and_replaced(server: ServerProcess) -> None:
    _wait_for(server, lambda ws: len(ws) == 2, "two live workers")
    victim = _workers(server)[0]["pid"]
    os.kill(victim, signal.SIGSTOP)  # alive, holding its socket, answering nothing
    try:
        _wait_for(
            server,
            lambda ws: len(ws) == 2 and victim not in {w["pid"] for w in ws},
            "the hung worker replaced",
            timeout=30.0,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    assert not Path(f"/proc/{victim}").exists() or "Z" in _state(victim), "it was killed"
    for _ in range(6):  # fresh connections: whichever worker the kernel picks answers
        assert _fresh(server, "GET", "/healthz").status_code == 200


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "gone"


def test_workers_that_can_never_start_stop_the_group_with_a_reason(
    tmp_path: Path, trained_artifact: Path
) -> None:
    import subprocess
    import sys

    repo = make_repository(tmp_path / "models", trained_artifact, ("1",))
    command = [sys.executable, "-c", "from recops.cli import app; app()", "serve"]
    args = ["--models", str(repo), "--workers", "2", "--port", "0"]
    (tmp_path / "a-file").write_text("not a folder")
    bad_log = ["--event-log", str(tmp_path / "a-file" / "events.sqlite3")]
    child = subprocess.Popen(
        [*command, *args, *bad_log],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers go with it if the test gives up
    )
    try:
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 3, stderr[-2000:]
    assert "no worker could start" in stderr
