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
