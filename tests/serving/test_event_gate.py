"""What one event producer can do: floods, the write token, the per-client quota."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN
from .fakes import load_fake, write_fake


def _settings(tmp_path: Path, **overrides: object) -> ServerSettings:
    write_fake(tmp_path / "models" / "news" / "1", n_items=50)
    values: dict[str, object] = {
        "model_repository": tmp_path / "models",
        "event_log_path": tmp_path / "events.sqlite3",
        "admin_token": ADMIN_TOKEN,
        **overrides,
    }
    return ServerSettings.model_validate(values)


def _clicks(user: str, items: list[str]) -> dict[str, object]:
    return {"events": [{"user_id": user, "item_id": i, "event": "click"} for i in items]}


def _long_id(batch: int, n: int) -> str:
    """A new user id of 200 characters, as in the flood the issue observed."""
    return f"{batch}-{n}".rjust(200, "x")


def _strategy(client: TestClient, user: str) -> str:
    reply = client.post("/v1/recommend", json={"user_id": user, "k": 5})
    assert reply.status_code == 200, reply.text
    strategy: str = reply.json()["strategy"]
    return strategy


def test_a_flood_on_unknown_items_evicts_no_one_also_after_a_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_users=1000, event_quota_bytes_per_s=0)
    with TestClient(create_app(settings, loader=load_fake)) as client:
        assert (
            client.post("/v1/events", json=_clicks("victim", ["i1", "i2", "i3"])).status_code == 200
        )
        assert _strategy(client, "victim") == "personalized"
        for batch in range(5):  # 5,000 new 200-character users, each on an unknown item
            flood = [
                {"user_id": _long_id(batch, n), "item_id": f"junk{n}", "event": "click"}
                for n in range(1000)
            ]
            assert client.post("/v1/events", json={"events": flood}).status_code == 200
        state = client.app.state.ctx.state  # type: ignore[attr-defined]
        assert len(state) == 1, "events on unknown items must take no space"
        assert _strategy(client, "victim") == "personalized"
    with TestClient(create_app(settings, loader=load_fake)) as client:  # replayed from the log
        assert _strategy(client, "victim") == "personalized"
        assert len(client.app.state.ctx.state) == 1  # type: ignore[attr-defined]


def test_a_flood_on_known_items_stays_within_the_byte_budget(tmp_path: Path) -> None:
    budget = 1024**2
    settings = _settings(tmp_path, state_max_bytes=budget, event_quota_bytes_per_s=0)
    with TestClient(create_app(settings, loader=load_fake)) as client:
        for batch in range(4):
            flood = [
                {
                    "user_id": f"{batch}-{n}".rjust(200, "x"),
                    "item_id": f"i{n % 50}",
                    "event": "click",
                }
                for n in range(2000)
            ]
            assert client.post("/v1/events", json={"events": flood}).status_code == 200
        state = client.app.state.ctx.state  # type: ignore[attr-defined]
        assert 0 < state.bytes <= budget and state.evicted > 0
        # The most recently active users are the ones kept.
        assert _strategy(client, _long_id(3, 1999)) == "personalized"
        assert _strategy(client, _long_id(0, 0)) == "cold_start"


def test_the_write_token_is_required_when_set(tmp_path: Path) -> None:
    settings = _settings(tmp_path, event_token="writer-secret")
    body = _clicks("u1", ["i1"])
    with TestClient(create_app(settings, loader=load_fake)) as client:
        refused = client.post("/v1/events", json=body)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "RECOPS_EVENT_TOKEN" in refused.json()["detail"]
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/events", json=body, headers=wrong).status_code == 401
        for token in ("writer-secret", ADMIN_TOKEN):
            auth = {"Authorization": f"Bearer {token}"}
            assert client.post("/v1/events", json=body, headers=auth).status_code == 200
        assert client.get("/healthz").status_code == 200, "other routes need no token"
        assert 'recops_event_refusals_total{reason="token"} 2.0' in client.get("/metrics").text


def test_a_client_over_its_quota_gets_429_with_retry_after_and_others_do_not(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path, event_quota_bytes_per_s=1024, event_quota_burst_bytes=8192, event_token="w"
    )
    app = create_app(settings, loader=load_fake)
    body = _clicks("u1", [f"i{n}" for n in range(40)])  # ~2.4 kB
    auth = {"Authorization": "Bearer w"}
    with TestClient(app) as client:
        statuses = [
            client.post("/v1/events", json=body, headers=auth).status_code for _ in range(6)
        ]
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses
        refused = client.post("/v1/events", json=body, headers=auth)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "retry after" in refused.json()["detail"]
    settings = _settings(tmp_path, event_quota_bytes_per_s=1024, event_quota_burst_bytes=8192)
    app = create_app(settings, loader=load_fake)
    with TestClient(app, client=("10.0.0.1", 1)) as first:
        while first.post("/v1/events", json=body).status_code == 200:
            pass
        other = TestClient(app, client=("10.0.0.2", 1))  # the same running app
        assert other.post("/v1/events", json=body).status_code == 200, "another address"


def test_an_evicted_trained_user_keeps_the_history_the_model_holds(
    settings: ServerSettings,
) -> None:
    settings = settings.model_copy(
        update={"state_max_bytes": 1024**2, "event_quota_bytes_per_s": 0}
    )
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json=_clicks("u3", ["i4", "i7"])).status_code == 200
        for batch in range(3):
            flood = [
                {
                    "user_id": f"{batch}-{n}".rjust(200, "x"),
                    "item_id": f"i{n % 60}",
                    "event": "click",
                }
                for n in range(3000)
            ]
            assert client.post("/v1/events", json={"events": flood}).status_code == 200
        state = client.app.state.ctx.state  # type: ignore[attr-defined]
        assert len(state.history("u3")) == 0, "the flood evicted u3's online events"
        assert _strategy(client, "u3") == "personalized", "its trained history remains"
