"""A real ``recops serve --workers 2`` following the ``champion`` alias under load.

The alias moves twice (a promotion, then a rollback) while four clients send
requests; every reply must be 200, and every worker must serve the new version
within seconds of each move (a two-phase switch from worker 0). Started before the
alias is set, every worker serves nothing (503 with the reason) until it is, then
every worker serves its version. (In-process: ``tests/serving/test_alias_follower.py``.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recops.registry import Registry
from recops.serving.process import ServerProcess
from tests.serving.conftest import START

from .conftest import MODEL, add_version, judge

BODY = {"user_id": "u3", "k": 10, "now": START + 30 * 86400}
#: The longest an alias move may take to reach every worker.
FOLLOW_LIMIT_S = 15.0


class Load:
    """Clients that recommend until stopped, noting each reply's version and time."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.failures: list[str] = []
        self.replies: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            # A new connection every few requests, so the kernel spreads them over the workers.
            with httpx.Client(base_url=self.url, timeout=10.0) as client:
                for _ in range(10):
                    try:
                        reply = client.post("/v1/recommend", json=BODY)
                    except httpx.HTTPError as exc:
                        self.failures.append(repr(exc))
                        continue
                    if reply.status_code != 200:
                        self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
                        continue
                    self.replies.append((time.monotonic(), reply.json()["version"]))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def switched(self, since: float, version: str, limit_s: float) -> float:
        """Seconds from ``since`` to the first reply of ``version`` after which all are."""
        deadline = since + limit_s
        while time.monotonic() < deadline:
            after = [(t, v) for t, v in self.replies if t >= since]
            old = [t for t, v in after if v != version]
            last_old = max(old, default=since)
            # Settled: the newest second of replies is all the new version.
            if after and after[-1][0] - last_old >= 1.0:
                return last_old - since
            time.sleep(0.1)
        raise AssertionError(f"not all replies were version {version} {limit_s} s after the move")


@pytest.fixture
def server(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> Iterator[ServerProcess]:
    repository = tmp_path / "models"
    judge(registry, add_version(registry, repository, trained_artifact, "1", "aa11"), True)
    judge(registry, add_version(registry, repository, second_artifact, "2", "bb22"), True)
    registry.promote(MODEL, "1", reason="the first champion")
    process = ServerProcess(
        repository,
        tmp_path / "events.sqlite3",
        ("--workers", "2"),
        {
            "RECOPS_FOLLOW_ALIAS": "champion",
            "RECOPS_REGISTRY_URI": registry.tracking_uri,
            "RECOPS_WORKER_TIMEOUT_S": "5",
        },
    )
    with process.start(120.0):
        yield process


def test_every_worker_follows_the_alias_with_no_failed_request(
    server: ServerProcess, registry: Registry
) -> None:
    with Load(server.url) as load:
        time.sleep(1.5)
        # The version policy alone would serve the latest (2): the alias says 1.
        assert load.replies and {v for _, v in load.replies} == {"1"}
        moved = time.monotonic()
        registry.promote(MODEL, "2", actor="test", reason="won the A/B test")
        promoted_s = load.switched(moved, "2", FOLLOW_LIMIT_S)
        moved = time.monotonic()
        registry.rollback(MODEL, actor="test", reason="guardrail failed")
        rolled_back_s = load.switched(moved, "1", FOLLOW_LIMIT_S)
    assert not load.failures, f"{len(load.failures)} failed requests, e.g. {load.failures[:3]}"
    assert len(load.replies) > 100
    print(
        f"\nalias move → every worker switched: promotion {promoted_s:.2f} s, "
        f"rollback {rolled_back_s:.2f} s; {len(load.replies)} requests, 0 failed"
    )


def _replies(url: str, path: str, n: int = 20) -> list[httpx.Response]:
    """``n`` requests, each on a new connection: the kernel spreads them over the workers."""
    out = []
    for _ in range(n):
        with httpx.Client(base_url=url, timeout=10.0) as client:
            if path == "/readyz":
                out.append(client.get(path))
            else:
                out.append(client.post(path, json=BODY))
    return out


def test_every_worker_waits_for_an_unset_alias_then_serves_it(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    repository = tmp_path / "models"
    judge(registry, add_version(registry, repository, trained_artifact, "1", "aa11"), True)
    judge(registry, add_version(registry, repository, second_artifact, "2", "bb22"), True)
    process = ServerProcess(
        repository,
        tmp_path / "events.sqlite3",
        ("--workers", "2"),
        {"RECOPS_FOLLOW_ALIAS": "champion", "RECOPS_REGISTRY_URI": registry.tracking_uri},
    )
    with process.start(120.0, wait_for="/healthz"):
        deadline = time.monotonic() + 60.0
        # Both workers up: each publishes its metrics (a gauge per worker).
        while not all(f'worker="{i}"' in httpx.get(f"{process.url}/metrics").text for i in "01"):
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.2)
        unset = f"alias 'champion' of model '{MODEL}' is not set in the registry"
        for reply in _replies(process.url, "/readyz") + _replies(process.url, "/v1/recommend"):
            assert reply.status_code == 503 and unset in reply.json()["detail"], reply.text
        assert all("Retry-After" in r.headers for r in _replies(process.url, "/v1/recommend"))
        moved = time.monotonic()
        registry.promote(MODEL, "1", reason="the first champion")  # not the latest (2)
        while True:
            replies = _replies(process.url, "/v1/recommend")
            assert {r.status_code for r in replies} <= {200, 503}, [r.text for r in replies]
            if all(r.status_code == 200 and r.json()["version"] == "1" for r in replies):
                break
            assert time.monotonic() - moved < FOLLOW_LIMIT_S, "not every worker serves 1"
            time.sleep(0.2)
        assert all(r.status_code == 200 for r in _replies(process.url, "/readyz"))
    print(f"\nalias set → every worker serving it: {time.monotonic() - moved:.2f} s")
