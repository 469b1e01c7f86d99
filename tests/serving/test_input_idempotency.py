"""Retried writes are stored once: an ``Idempotency-Key`` per request, an ``event_id`` per event."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

BATCH = {
    "events": [
        {"user_id": "u7", "item_id": "i1", "event": "click", "timestamp": 1_700_000_100},
        {"user_id": "u7", "item_id": "i2", "event": "like", "timestamp": 1_700_000_200},
    ]
}


def _count(client: TestClient) -> int:
    return int(client.app.state.ctx.event_log.count())  # type: ignore[attr-defined]


def test_a_batch_sent_three_times_with_a_key_is_stored_once(client: TestClient) -> None:
    key = {"Idempotency-Key": "batch-0001"}
    replies = [client.post("/v1/events", json=BATCH, headers=key) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json() for r in replies] == [{"accepted": 2, "duplicates": 0}] * 3
    assert _count(client) == 2
    assert "idempotent-replayed" not in replies[0].headers
    assert [r.headers.get("idempotent-replayed") for r in replies[1:]] == ["true", "true"]
    # Another key is another request.
    other = client.post("/v1/events", json=BATCH, headers={"Idempotency-Key": "batch-0002"})
    assert other.status_code == 200 and _count(client) == 4


def test_a_key_reused_for_another_body_is_refused(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert client.post("/v1/events", json=BATCH, headers=key).status_code == 200
    changed = {"events": BATCH["events"][:1]}
    reply = client.post("/v1/events", json=changed, headers=key)
    assert reply.status_code == 409, reply.text
    assert "k-1" in reply.json()["detail"] and "another request" in reply.json()["detail"]
    assert _count(client) == 2


def test_the_same_events_in_another_encoding_are_the_same_request(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-2", "Content-Type": "application/json"}
    compact = b'{"events":[{"user_id":"u7","item_id":"i1","event":"click","value":1}]}'
    spaced = b'{ "events" : [ {"event": "click", "item_id": "i1", "user_id": "u7"} ] }'
    assert client.post("/v1/events", content=compact, headers=key).status_code == 200
    again = client.post("/v1/events", content=spaced, headers=key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert _count(client) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_malformed_keys_are_422(client: TestClient, key: str) -> None:
    reply = client.post(
        "/v1/events", json=BATCH, headers=[("Idempotency-Key", key.encode("utf-8"))]
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _count(client) == 0


def test_event_ids_store_each_event_once(client: TestClient) -> None:
    with_ids = {"events": [{**e, "event_id": f"e{n}"} for n, e in enumerate(BATCH["events"])]}
    assert client.post("/v1/events", json=with_ids).json() == {"accepted": 2, "duplicates": 0}
    assert client.post("/v1/events", json=with_ids).json() == {"accepted": 2, "duplicates": 2}
    # A client that re-batches: one event already stored, one new.
    mixed = {"events": [with_ids["events"][1], {**BATCH["events"][0], "event_id": "e9"}]}
    assert client.post("/v1/events", json=mixed).json() == {"accepted": 2, "duplicates": 1}
    assert _count(client) == 3
    stored = client.app.state.ctx.event_log.tail(3)  # type: ignore[attr-defined]
    assert [e.context["event_id"] for e in stored] == ["e0", "e1", "e9"]
    text = client.get("/metrics").text
    assert 'recops_events_ingested_total{event="click"} 2.0' in text, "duplicates not counted"


def test_keys_survive_a_restart(settings: ServerSettings) -> None:
    key = {"Idempotency-Key": "before-restart"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json=BATCH, headers=key).status_code == 200
    with TestClient(create_app(settings)) as restarted:
        reply = restarted.post("/v1/events", json=BATCH, headers=key)
        assert reply.json() == {"accepted": 2, "duplicates": 0}
        assert reply.headers["idempotent-replayed"] == "true"
        assert _count(restarted) == 2


def test_the_window_is_a_setting(settings: ServerSettings) -> None:
    assert ServerSettings().idempotency_window_s == 86_400.0
    short = settings.model_copy(update={"idempotency_window_s": 3600.0})
    with TestClient(create_app(short)) as client:
        assert client.app.state.ctx.event_log.idempotency_window_s == 3600.0  # type: ignore[attr-defined]
