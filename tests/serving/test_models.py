"""``GET /v1/models`` and readiness while versions load; per-version readiness."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN
from .fakes import FakeModel, load_fake, write_fake

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LOAD_S = 2.0


def _slow_load(path: Path) -> FakeModel:
    if path.name == "2":
        time.sleep(LOAD_S)
    return load_fake(path)


def _settings(tmp_path: Path) -> ServerSettings:
    for version in ("1", "2"):
        write_fake(tmp_path / "models" / "news" / version, seed=int(version))
    return ServerSettings(
        model_repository=tmp_path / "models",
        version_policy="pinned",
        pinned_version="1",
        event_log_path=tmp_path / "events.sqlite3",
        admin_token=ADMIN_TOKEN,
    )


def test_listing_models_does_not_wait_for_a_version_that_loads(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path), loader=_slow_load)) as client:
        done: list[int] = []
        loader = threading.Thread(
            target=lambda: done.append(
                client.post(
                    "/v1/admin/models/load", json={"version": "2"}, headers=AUTH
                ).status_code
            )
        )
        loader.start()
        time.sleep(0.3)  # the load holds the admin lock now
        start = time.monotonic()
        listing = client.get("/v1/models")
        waited = time.monotonic() - start
        ready = client.get("/readyz")
        loader.join(timeout=10)
    assert listing.status_code == 200 and waited < LOAD_S / 4, f"waited {waited:.2f} s"
    assert ready.status_code == 200
    assert done == [200]


def test_each_version_says_whether_it_is_ready(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path), loader=load_fake)) as client:
        served = client.get("/v1/models/news/versions/1/ready")
        assert served.status_code == 200 and served.json()["status"] == "ready"
        waiting = client.get("/v1/models/news/versions/2/ready")
        assert waiting.status_code == 503 and "not loaded" in waiting.json()["detail"]
        load = client.post("/v1/admin/models/load", json={"version": "2"}, headers=AUTH)
        assert load.status_code == 200
        assert client.get("/v1/models/news/versions/2/ready").status_code == 200
        assert client.get("/v1/models/news/versions/9/ready").status_code == 404
        assert client.get("/v1/models/other/versions/1/ready").status_code == 404
        bad = client.get("/v1/models/news/versions/..x/ready")
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][0] == "path"
        assert (
            "/v1/models/{name}/versions/{version}/ready"
            in client.get("/openapi.json").json()["paths"]
        )


def test_readiness_says_when_the_event_log_cannot_take_writes(tmp_path: Path) -> None:
    import sqlite3

    from recops.serving.health import PROBE_S

    settings = _settings(tmp_path)
    with TestClient(create_app(settings, loader=load_fake)) as client:
        assert client.get("/readyz").status_code == 200
        time.sleep(PROBE_S)
        # Another process holds the log's write lock (a stuck writer, say).
        holder = sqlite3.connect(settings.event_log_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            locked = client.get("/readyz")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert locked.status_code == 503, locked.text
        assert "event log cannot take writes" in locked.json()["detail"]
        time.sleep(PROBE_S)
        assert client.get("/readyz").status_code == 200


def test_loads_are_timed_and_failures_counted(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    write_fake(tmp_path / "models" / "news" / "3", broken=True)
    with TestClient(create_app(settings, loader=load_fake)) as client:
        broken = client.post("/v1/admin/models/load", json={"version": "3"}, headers=AUTH)
        assert broken.status_code == 409
        text = client.get("/metrics").text
    assert 'recops_model_load_failures_total{model="news"} 1.0' in text
    assert 'recops_model_load_seconds_count{model="news",outcome="failed"} 1.0' in text
    assert 'recops_model_load_seconds_count{model="news",outcome="loaded"} 1.0' in text
