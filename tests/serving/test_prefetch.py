"""The item prior is never computed on the request path, and computed at a bounded rate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

from .fakes import FakeModel, load_fake, write_fake

RATE = 4.0


class _CountingModel(FakeModel):
    """A fake whose prior says where it was computed: on the event loop, or off it."""

    def __init__(self, n_items: int, seed: int) -> None:
        super().__init__(n_items, seed)
        self.on_loop: list[int] = []
        self.off_loop: list[int] = []

    def item_prior(self, now: int) -> np.ndarray:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(now)
        except RuntimeError:
            self.off_loop.append(now)
        return np.linspace(0.0, 1.0, len(self.item_ids_), dtype=np.float32) * (now % 7)


def _load(path: Path) -> _CountingModel:
    fake = load_fake(path)
    return _CountingModel(len(fake.item_ids_), fake.seed)


def test_stepping_now_never_computes_on_the_request_path(tmp_path: Path) -> None:
    write_fake(tmp_path / "models" / "news" / "1", n_items=200)
    settings = ServerSettings(
        model_repository=tmp_path / "models",
        event_log_path=tmp_path / "events.sqlite3",
        max_clock_skew_s=86_400,
        prior_computations_per_s=RATE,
    )
    start = int(time.time()) + 600
    with TestClient(create_app(settings, loader=_load)) as client:
        model = client.app.state.ctx.manager.serving.model  # type: ignore[attr-defined]
        began = time.monotonic()
        for step in range(100):  # one minute further into the future per request
            body = {"user_id": "u1", "k": 5, "now": start + 60 * step}
            assert client.post("/v1/recommend", json=body).status_code == 200
        elapsed = time.monotonic() - began
        assert model.on_loop == [], "a request computed the prior on the event loop"
        asked = [w for w in model.off_loop if w >= start - 60]  # not the present windows
        assert len(asked) <= RATE * elapsed + RATE + 1, (len(asked), elapsed)
        # The last window asked for is computed in the background soon after.
        last = start + 60 * 99
        bundle = client.app.state.ctx.manager.serving  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while not bundle.prior_cached(last) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bundle.prior_cached(last)


def test_a_replaying_server_computes_the_prior_of_the_replayed_time(tmp_path: Path) -> None:
    write_fake(tmp_path / "models" / "news" / "1", n_items=200)
    settings = ServerSettings(
        model_repository=tmp_path / "models",
        event_log_path=tmp_path / "events.sqlite3",
        replay=True,
    )
    with TestClient(create_app(settings, loader=_load)) as client:
        bundle = client.app.state.ctx.manager.serving  # type: ignore[attr-defined]
        for now in (1_600_000_000, 1_600_000_600):
            body = {"user_id": "u1", "k": 5, "now": now}
            assert client.post("/v1/recommend", json=body).status_code == 200
            assert bundle.prior_cached(now), "the replayed window itself, not the nearest"
