"""Every endpoint's happy path and bad input, in-process, on a real tiny TwoTower."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN, CATEGORIES, START, make_repository, tiny_world

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOW = START + 30 * 86400


def _category(item_id: str) -> str:
    return CATEGORIES[int(item_id[1:]) % len(CATEGORIES)]


def test_health_ready_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert (ready["status"], ready["model"], ready["version"]) == ("ready", "news", "1")
    spec = client.get("/openapi.json").json()
    assert {"/v1/recommend", "/v1/similar", "/v1/search", "/v1/category", "/v1/events"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200


def test_not_ready_without_a_model(tmp_path: Path) -> None:
    settings = ServerSettings(
        model_repository=tmp_path / "empty", event_log_path=tmp_path / "e.sqlite3"
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        reply = client.post("/v1/recommend", json={"user_id": "u1"})
        assert reply.status_code == 503 and "no model" in reply.json()["detail"]


def test_recommend_cold_then_personalized_after_a_click(client: TestClient) -> None:
    cold = client.post("/v1/recommend", json={"user_id": "newcomer", "k": 7, "now": NOW}).json()
    assert cold["strategy"] == "cold_start" and len(cold["items"]) == 7
    assert cold["scores"] == sorted(cold["scores"], reverse=True)
    assert (cold["model"], cold["version"]) == ("news", "1")
    clicked = [f"i{j}" for j in range(0, 30, 3)]  # all "sports"
    events = [
        {"user_id": "newcomer", "item_id": i, "event": "click", "timestamp": NOW - 60 + n}
        for n, i in enumerate(clicked)
    ]
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 10
    warm = client.post("/v1/recommend", json={"user_id": "newcomer", "k": 7, "now": NOW}).json()
    assert warm["strategy"] == "personalized"
    assert warm["items"] != cold["items"], "the click must change the very next recommendation"
    assert not set(warm["items"]) & set(clicked), "seen items are excluded by default"
    with_seen = client.post(
        "/v1/recommend", json={"user_id": "newcomer", "k": 60, "exclude_seen": False}
    ).json()
    assert set(clicked) <= set(with_seen["items"])


def test_recommend_get_and_anonymous_history(client: TestClient) -> None:
    reply = client.get(
        "/v1/recommend", params={"history": ["i1", "i4"], "k": 5, "categories": ["tech"]}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["strategy"] == "personalized" and len(body["items"]) == 5
    assert all(_category(i) == "tech" for i in body["items"])
    assert not {"i1", "i4"} & set(body["items"])


def test_filters_keep_k_when_enough_items_are_eligible(client: TestClient) -> None:
    body = client.post(
        "/v1/recommend",
        json={"user_id": "u0", "k": 19, "categories": ["politics"], "exclude_items": ["i2"]},
    ).json()
    assert len(body["items"]) == 19 and "i2" not in body["items"]
    assert all(_category(i) == "politics" for i in body["items"])
    # Items are published every 10 minutes from START: at START + 10 min, a 10-minute
    # window holds exactly i0 and i1; later items are not out yet.
    fresh = client.post(
        "/v1/similar", json={"item_id": "i5", "k": 10, "max_age_s": 600, "now": START + 600}
    ).json()
    assert sorted(fresh["items"]) == ["i0", "i1"]


def test_similar_search_category(client: TestClient) -> None:
    similar = client.post("/v1/similar", json={"item_id": "i3", "k": 5}).json()
    assert similar["strategy"] == "similar" and "i3" not in similar["items"]
    assert len(similar["items"]) == 5
    search = client.post("/v1/search", json={"query": "tech story", "k": 4}).json()
    assert search["strategy"] == "search" and len(search["items"]) == 4
    category = client.post("/v1/category", json={"category": "sports", "k": 6}).json()
    assert category["strategy"] == "category"
    assert len(category["items"]) == 6 and {_category(i) for i in category["items"]} == {"sports"}


@pytest.mark.parametrize(
    ("path", "body", "kind", "value"),
    [
        ("/v1/similar", {"item_id": "nope"}, "item", "nope"),
        ("/v1/category", {"category": "cooking"}, "category", "cooking"),
        ("/v1/recommend", {"user_id": "u1", "categories": ["cooking"]}, "category", "cooking"),
    ],
)
def test_unknown_ids_are_404_naming_them(
    client: TestClient, path: str, body: dict, kind: str, value: str
) -> None:
    reply = client.post(path, json=body)
    assert reply.status_code == 404
    assert reply.json()["kind"] == kind and reply.json()["id"] == value
    assert value in reply.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommend", {"user_id": "u1", "k": 0}, "k"),
        ("/v1/recommend", {"user_id": "u1", "k": "many"}, "k"),
        ("/v1/recommend", {"user_id": "u1", "k": 1001}, "k"),
        ("/v1/recommend", {"user_id": ""}, "user_id"),
        ("/v1/similar", {}, "item_id"),
        ("/v1/search", {"query": ""}, "query"),
        ("/v1/events", {"events": []}, "events"),
        ("/v1/events", {"events": [{"user_id": "u", "item_id": "i", "event": "x"}]}, "event"),
        ("/v1/recommend", {"user_id": "u1", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    client: TestClient, path: str, body: dict, field: str
) -> None:
    reply = client.post(path, json=body)
    assert reply.status_code == 422, reply.text
    assert any(field in map(str, error["loc"]) for error in reply.json()["detail"])


def test_malformed_and_oversized_bodies(client: TestClient, settings: ServerSettings) -> None:
    broken = client.post(
        "/v1/recommend", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    not_utf8 = client.post(
        "/v1/similar", content=b"\xf9\x00", headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 422 and not_utf8.json()["detail"][0]["loc"] == ["body"]
    huge = b'{"user_id": "' + b"x" * settings.max_body_bytes + b'"}'
    reply = client.post("/v1/recommend", content=huge, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "larger than" in reply.json()["detail"]

    def chunks():  # no Content-Length: the size is counted as the body streams in
        yield huge[: len(huge) // 2]
        yield huge[len(huge) // 2 :]

    chunked = client.post(
        "/v1/recommend", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413


def test_events_are_logged_with_context(client: TestClient, settings: ServerSettings) -> None:
    event = {
        "user_id": "u9",
        "item_id": "i9",
        "event": "impression",
        "value": 0.0,
        "position": 3,
        "propensity": 0.5,
        "request_id": "r1",
    }
    assert client.post("/v1/events", json={"events": [event]}).json()["accepted"] == 1
    client.close()  # flush and close the log before reading it
    log = SQLiteEventLog(settings.event_log_path)
    stored = log.tail(1)[0]
    log.close()
    assert (stored.user_id, stored.event, stored.value) == ("u9", "impression", 0.0)
    assert stored.context == {"position": 3, "propensity": 0.5, "request_id": "r1"}


def test_state_is_warmed_from_the_event_log(settings: ServerSettings) -> None:
    with TestClient(create_app(settings)) as client:
        events = [{"user_id": "w", "item_id": "i2", "event": "click"}]
        client.post("/v1/events", json={"events": events})
    with TestClient(create_app(settings)) as restarted:
        reply = restarted.post("/v1/recommend", json={"user_id": "w"}).json()
        assert reply["strategy"] == "personalized" and "i2" not in reply["items"]


def test_models_and_admin_api(
    tmp_path: Path, settings: ServerSettings, trained_artifact: Path
) -> None:
    repo = settings.model_repository
    make_repository(repo, trained_artifact, ("2",))
    broken = repo / "news" / "3"
    shutil.copytree(trained_artifact, broken)
    weights = next(broken.glob("weights*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-100])  # a truncated upload
    pinned = settings.model_copy(update={"version_policy": "pinned", "pinned_version": "1"})
    with TestClient(create_app(pinned)) as client:
        listing = client.get("/v1/models").json()
        assert [v["version"] for v in listing["versions"]] == ["1", "2", "3"]
        assert listing["serving"]["version"] == "1"
        switch = "/v1/admin/models/switch"
        assert client.post(switch, json={"version": "2"}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post(switch, json={"version": "2"}, headers=wrong).status_code == 401
        assert client.post(switch, json={"version": "2"}, headers=AUTH).status_code == 200
        assert client.post("/v1/recommend", json={"user_id": "u1"}).json()["version"] == "2"
        failed = client.post(switch, json={"version": "3"}, headers=AUTH)
        assert failed.status_code == 409 and "weights" in failed.json()["detail"]
        assert client.get("/readyz").json()["version"] == "2", "a failed load keeps serving"
        missing = client.post(switch, json={"version": "9"}, headers=AUTH)
        assert missing.status_code == 404
        bad_name = client.post(switch, json={"name": "..", "version": "1"}, headers=AUTH)
        assert bad_name.status_code == 422
        unload = "/v1/admin/models/unload"
        assert client.post(unload, json={"version": "2"}, headers=AUTH).status_code == 409
        assert client.post(unload, json={"version": "1"}, headers=AUTH).status_code == 200
        load = client.post("/v1/admin/models/load", json={"version": "1"}, headers=AUTH)
        assert {v["version"]: v["loaded"] for v in load.json()["versions"]}["1"] is True
        metrics = client.get("/metrics").text
        assert 'recops_model_serving{model="news",version="2"} 1.0' in metrics
        policy = client.post("/v1/admin/models/apply-policy", headers=AUTH).json()
        assert policy["serving"]["version"] == "1", "the pinned policy names version 1"


def test_admin_api_is_disabled_without_a_token(settings: ServerSettings) -> None:
    no_token = settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(no_token)) as client:
        reply = client.post("/v1/admin/models/switch", json={"version": "1"}, headers=AUTH)
        assert reply.status_code == 403 and "RECOPS_ADMIN_TOKEN" in reply.json()["detail"]


def test_metrics_count_requests_stages_and_events(client: TestClient) -> None:
    client.post("/v1/recommend", json={"user_id": "u1"})
    client.post("/v1/recommend", json={"user_id": "u1", "k": 0})
    click = {"user_id": "u", "item_id": "i1", "event": "click"}
    client.post("/v1/events", json={"events": [click]})
    client.get("/no/such/path")
    text = client.get("/metrics").text
    ok = 'recops_requests_total{endpoint="/v1/recommend",model_version="news/1",status="200"}'
    assert ok in text
    assert 'endpoint="/v1/recommend",model_version="none",status="422"' in text
    assert 'recops_errors_total{endpoint="/v1/recommend",kind="4xx"} 1.0' in text
    assert 'recops_events_ingested_total{event="click"} 1.0' in text
    assert 'endpoint="unmatched"' in text
    for stage in ("state", "user_tower", "ann", "filter", "rerank", "serialize", "event_log"):
        assert f'recops_stage_seconds_count{{stage="{stage}"}}' in text


def test_batching_gives_the_same_answers(settings: ServerSettings) -> None:
    bodies = [{"user_id": f"u{u}", "k": 5, "now": NOW} for u in range(6)]
    with TestClient(create_app(settings)) as plain:
        expected = [plain.post("/v1/recommend", json=b).json()["items"] for b in bodies]
    batched = settings.model_copy(update={"batching": True, "batch_max_delay_ms": 0.5})
    with TestClient(create_app(batched)) as client:
        got = [client.post("/v1/recommend", json=b).json()["items"] for b in bodies]
        assert "recops_batch_size_count 6.0" in client.get("/metrics").text
    assert got == expected


def test_ceiling_routes_only_when_asked(client: TestClient, settings: ServerSettings) -> None:
    for path in ("/v1/ceiling", "/v1/ceiling/standard"):
        assert len(client.get(path, params={"k": 12}).json()["items"]) == 12
        assert len(client.get(path).json()["items"]) == 10
        for bad in ("0", "1001", "x", "-1"):
            reply = client.get(path, params={"k": bad})
            assert reply.status_code == 422, (path, bad)
            assert reply.json()["detail"][0]["loc"] == ["query", "k"]
    plain = settings.model_copy(update={"benchmark_routes": False})
    with TestClient(create_app(plain)) as other:
        assert other.get("/v1/ceiling").status_code == 404


def test_known_user_history_comes_from_training(client: TestClient) -> None:
    interactions, _ = tiny_world()
    trained = set(interactions.loc[interactions["user_id"] == "u0", "item_id"])
    reply = client.post("/v1/recommend", json={"user_id": "u0", "k": 10}).json()
    assert reply["strategy"] == "personalized"
    assert not trained & set(reply["items"]), "training items count as seen"


def test_settings_reach_the_loaded_model(settings: ServerSettings) -> None:
    tuned = settings.model_copy(
        update={"history_size": 3, "prior_refresh_s": 1, "exact_index_max_items": 10}
    )
    with TestClient(create_app(tuned)) as client:
        bundle = client.app.state.ctx.manager.current()
        assert bundle.index.kind == "ivf", "60 items > exact_index_max_items"
        assert bundle._prior.refresh_s == 1
        assert all(len(h) <= 3 for h in bundle.histories.values())


def test_an_ivf_version_is_tuned_on_its_known_users_and_says_so(settings: ServerSettings) -> None:
    tuned = settings.model_copy(update={"exact_index_max_items": 10, "ivf_target_recall": 0.99})
    with TestClient(create_app(tuned)) as client:
        bundle = client.app.state.ctx.manager.current()
        tuning = bundle.index.tuning
        assert tuning is not None and tuning.met and tuning.recall >= 0.99
        assert tuning.n_queries == min(256, len(bundle.histories))
        assert tuning.fetch == min(tuned.rerank_candidates, bundle.index.n_items)
        listed = client.get("/v1/models").json()["serving"]
        assert listed["ivf_nprobe"] == bundle.index.nprobe == tuning.nprobe
        assert listed["index_recall"] == round(tuning.recall, 4)
    fixed = settings.model_copy(
        update={
            "exact_index_max_items": 10,
            "ivf_target_recall": None,
            "ivf_nlist": 8,  # the default gives a catalog this small one cell
            "ivf_nprobe": 3,
        }
    )
    with TestClient(create_app(fixed)) as client:
        bundle = client.app.state.ctx.manager.current()
        assert bundle.index.tuning is None and bundle.index.nprobe == 3
        assert bundle.index._index.nlist == 8
