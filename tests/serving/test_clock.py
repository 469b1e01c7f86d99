"""A client's ``now`` is bounded to the server clock ± the skew, unless the server replays."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.clock import ClockSkewError, RequestClock
from recops.serving.settings import ServerSettings

from .fakes import load_fake, write_fake


def _settings(tmp_path: Path, **overrides: object) -> ServerSettings:
    write_fake(tmp_path / "models" / "news" / "1")
    return ServerSettings(
        model_repository=tmp_path / "models",
        event_log_path=tmp_path / "events.sqlite3",
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture()
def bounded(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path, max_clock_skew_s=60), loader=load_fake)) as c:
        yield c


def test_a_now_far_from_the_server_clock_is_refused_naming_it(bounded: TestClient) -> None:
    now = int(time.time())
    for offset in (3600, -86400):
        reply = bounded.post("/v1/recommend", json={"user_id": "u1", "now": now + offset})
        assert reply.status_code == 422, reply.text
        (error,) = reply.json()["detail"]
        assert error["loc"] == ["body", "now"] and "within 60 s" in error["msg"]
        assert "RECOPS_REPLAY" in error["msg"]
    reply = bounded.get("/v1/recommend", params={"user_id": "u1", "now": now + 3600})
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["query", "now"]
    similar = bounded.post("/v1/similar", json={"item_id": "i1", "now": now + 3600})
    assert similar.status_code == 422
    # Within the skew, or without `now`: served.
    assert bounded.post("/v1/recommend", json={"user_id": "u1", "now": now + 30}).status_code == 200
    assert bounded.post("/v1/recommend", json={"user_id": "u1"}).status_code == 200


def test_a_replaying_server_accepts_any_now(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_clock_skew_s=60, replay=True)
    with TestClient(create_app(settings, loader=load_fake)) as client:
        reply = client.post("/v1/recommend", json={"user_id": "u1", "now": 1_600_000_000})
        assert reply.status_code == 200, reply.text


def test_the_clock_itself() -> None:
    now = int(time.time())
    assert RequestClock()(5) == 5, "unbounded in a library"
    assert abs(RequestClock(10)(None) - now) <= 1
    with pytest.raises(ClockSkewError, match="-100 s away"):
        RequestClock(10)(now - 100)
