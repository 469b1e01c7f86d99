"""A real ``recops serve --workers 2`` following the ``champion`` alias under load.

The alias moves twice (a promotion, then a rollback) while four clients send
requests; every reply must be 200, and every worker must serve the new version
within seconds of each move (a two-phase switch from worker 0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recops.registry import Registry
from recops.serving.app import create_app
from recops.serving.process import ServerProcess
from recops.serving.settings import ServerSettings
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


def _serving(client: TestClient) -> str:
    reply = client.post("/v1/recommend", json=BODY)
    assert reply.status_code == 200, reply.text
    version: str = reply.json()["version"]
    return version


def _wait_for(client: TestClient, version: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _serving(client) != version:
        assert time.monotonic() < deadline, f"still not serving {version} after {timeout_s} s"
        time.sleep(0.05)


def test_an_unset_alias_keeps_the_policy_and_a_broken_version_is_never_served(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    repository = tmp_path / "models"
    for folder, artifact, digest in (
        ("1", trained_artifact, "aa11"), ("2", second_artifact, "bb22"),
        ("3", trained_artifact, "cc33"),
    ):  # fmt: skip
        judge(registry, add_version(registry, repository, artifact, folder, digest), True)
    (repository / MODEL / "3" / "weights.safetensors").write_bytes(b"not weights")
    settings = ServerSettings(
        model_repository=repository,
        event_log_path=tmp_path / "events.sqlite3",
        replay=True,
        version_policy="pinned",
        pinned_version="1",
        follow_alias="champion",
        registry_uri=registry.tracking_uri,
        follow_interval_s=0.1,
    )
    with TestClient(create_app(settings)) as client:
        assert _serving(client) == "1"  # no champion yet: the policy's version
        registry.promote(MODEL, "2", reason="better")
        _wait_for(client, "2")
        registry.promote(MODEL, "3", reason="looked fine")  # its weights are broken on disk
        time.sleep(0.5)
        assert _serving(client) == "2"
        registry.rollback(MODEL, reason="3 does not load")
        registry.promote(MODEL, "1", reason="back to the first")
        _wait_for(client, "1")
