"""A server following a registry alias serves only what the alias names, in-process.

Started before the alias is set (no champion promoted yet) or while the registry
cannot be read, it serves nothing: ``/readyz`` and the recommendation routes answer
503 with the reason (the routes with ``Retry-After``), ``/healthz`` 200; the next
look after the alias is set serves its version. Once it has served one, a later
problem keeps the version followed last. (Several workers: see
``tests/registry/test_server_follows_alias.py``.)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recops.registry import Registry
from recops.serving.app import create_app
from recops.serving.settings import ServerSettings
from tests.registry.conftest import (  # noqa: F401  (fixtures)
    MODEL,
    add_version,
    judge,
    mlflow_template,
    registry,
    tracking_uri,
)
from tests.serving.conftest import START

NOW = START + 30 * 86400
BODY = {"user_id": "u3", "k": 10, "now": NOW}
UNSET = f"alias 'champion' of model '{MODEL}' is not set in the registry"
#: What each recommendation route is asked while nothing is served.
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/recommend", {"json": BODY}),
    ("GET", "/v1/recommend", {"params": {"user_id": "u3", "k": 5}}),
    ("POST", "/v1/similar", {"json": {"item_id": "i3", "k": 5}}),
    ("POST", "/v1/search", {"json": {"query": "tech story", "k": 4}}),
    ("POST", "/v1/category", {"json": {"category": "tech", "k": 4}}),
]


@pytest.fixture
def repository(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
    trained_artifact: Path,
    second_artifact: Path,
) -> Path:
    """Versions 1 and 2, registered with a passed gate; no champion."""
    root = tmp_path / "models"
    judge(registry, add_version(registry, root, trained_artifact, "1", "aa11"), True)
    judge(registry, add_version(registry, root, second_artifact, "2", "bb22"), True)
    return root


def _settings(root: Path, registry_uri: str, **more: Any) -> ServerSettings:
    return ServerSettings(
        model_repository=root,
        event_log_path=root.parent / "events.sqlite3",
        replay=True,
        follow_alias="champion",
        registry_uri=registry_uri,
        follow_interval_s=0.1,
        **more,
    )


def _serving(client: TestClient) -> str:
    reply = client.post("/v1/recommend", json=BODY)
    assert reply.status_code == 200, reply.text
    version: str = reply.json()["version"]
    return version


def _wait_for(client: TestClient, version: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200 or _serving(client) != version:
        assert time.monotonic() < deadline, f"still not serving {version} after {timeout_s} s"
        time.sleep(0.05)


def _assert_serves_nothing(client: TestClient, reason: str) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert reason in ready.json()["detail"], ready.json()
    for method, path, kwargs in ROUTES:
        reply = client.request(method, path, **kwargs)
        assert reply.status_code == 503, (path, reply.text)
        assert reply.headers["Retry-After"] == "1", path  # the follow interval, rounded up
        assert reason in reply.json()["detail"], (path, reply.json())


def _followed(client: TestClient) -> str:
    """The ``recops_alias_followed`` line of ``/metrics``."""
    lines = client.get("/metrics").text.splitlines()
    (line,) = [x for x in lines if x.startswith("recops_alias_followed{")]
    return line


def test_an_unset_alias_serves_nothing_until_it_is_set(
    registry: Registry,  # noqa: F811
    repository: Path,
) -> None:
    # The version policy alone would serve the latest (2): nobody promoted it.
    with TestClient(create_app(_settings(repository, registry.tracking_uri))) as client:
        _assert_serves_nothing(client, UNSET)
        time.sleep(0.3)  # a few more looks: still nothing, and no crash
        _assert_serves_nothing(client, UNSET)
        line = _followed(client)
        assert 'alias="champion"' in line and f'model="{MODEL}"' in line
        assert 'version=""' in line and line.endswith(" 0.0")
        assert client.get("/v1/models").json()["serving"] is None
        # An event sent meanwhile is kept for the version to come.
        click = {"user_id": "newcomer", "item_id": "i3", "event": "click", "timestamp": NOW - 60}
        assert client.post("/v1/events", json={"events": [click]}).json()["accepted"] == 1
        registry.promote(MODEL, "1", reason="the first champion")
        _wait_for(client, "1")
        ready = client.get("/readyz").json()
        assert (ready["status"], ready["model"], ready["version"]) == ("ready", MODEL, "1")
        for method, path, kwargs in ROUTES:
            assert client.request(method, path, **kwargs).status_code == 200, path
        line = _followed(client)
        assert 'registry_version="1"' in line and 'version="1"' in line
        assert line.endswith(" 1.0")
        newcomer = {"user_id": "newcomer", "k": 5, "now": NOW}
        assert client.post("/v1/recommend", json=newcomer).json()["strategy"] == "personalized"


def test_an_unreachable_registry_at_start_serves_nothing_until_it_answers(
    registry: Registry,  # noqa: F811
    repository: Path,
    tmp_path: Path,
) -> None:
    registry.promote(MODEL, "2", reason="the champion")
    later = tmp_path / "later"
    later.write_text("a file where the registry's folder should be")  # it cannot open
    settings = _settings(repository, f"sqlite:///{later}/mlflow.db")
    with TestClient(create_app(settings)) as client:
        _assert_serves_nothing(client, f"alias 'champion' of model '{MODEL}': FileExistsError")
        later.unlink()
        later.mkdir()
        shutil.copy(registry.tracking_uri.removeprefix("sqlite:///"), later / "mlflow.db")
        _wait_for(client, "2")


def test_after_the_first_version_problems_keep_the_last_one(
    registry: Registry,  # noqa: F811
    repository: Path,
    trained_artifact: Path,
) -> None:
    judge(registry, add_version(registry, repository, trained_artifact, "3", "cc33"), True)
    (repository / MODEL / "3" / "weights.safetensors").write_bytes(b"not weights")
    settings = _settings(repository, registry.tracking_uri)
    with TestClient(create_app(settings)) as client:
        registry.promote(MODEL, "2", reason="better")
        _wait_for(client, "2")
        registry.promote(MODEL, "3", reason="looked fine")  # its weights are broken on disk
        time.sleep(0.5)
        assert _serving(client) == "2"
        assert client.get("/readyz").status_code == 200
        assert _followed(client).endswith(" 0.0")  # the alias's version is not served
        registry.client.delete_registered_model_alias(MODEL, "champion")
        time.sleep(0.5)
        assert _serving(client) == "2"  # unset again: the last followed version serves on
        assert client.get("/readyz").status_code == 200
        registry.promote(MODEL, "1", reason="back to the first")
        _wait_for(client, "1")
        assert _followed(client).endswith(" 1.0")
