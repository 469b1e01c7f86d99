"""New items for a served model without retraining: the admin route, the catalog file, the swap.

In-process (a TestClient); ``test_items_process.py`` has a real ``recops serve
--workers 2`` under load.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recops.experiments.bandit import SoftmaxBandit
from recops.experiments.config import ExperimentConfig, ModelRef
from recops.experiments.store import ExperimentStore
from recops.models.two_tower import TwoTower
from recops.serving.app import create_app
from recops.serving.index import IndexParams, VectorIndex
from recops.serving.items import ItemUpdates, grow, items_frame
from recops.serving.repository import ModelManager, ModelRepository
from recops.serving.schemas import MAX_ITEMS, ItemIn
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN, START, make_repository

NOW = START + 30 * 86400
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FRESH = [
    {"item_id": "fresh-tech", "title": "tech launch today", "categories": ["tech"]},
    {
        "item_id": "fresh-sports",
        "title": "sports final tonight",
        "categories": ["sports"],
        "publish_time": NOW - 3600,
    },
    {"item_id": "embargoed", "title": "politics vote", "publish_time": NOW + 3600},
]


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def _add(client: TestClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    reply = client.post("/v1/admin/items", json={"items": items}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def test_added_items_are_searched_similar_and_filtered_as_the_grown_model_ranks(
    client: TestClient, trained_artifact: Path
) -> None:
    assert client.post("/v1/similar", json={"item_id": "fresh-tech"}).status_code == 404
    reply = _add(client, [*FRESH, {"item_id": "i3"}])  # i3 is known: left as it is
    assert reply["received"] == 4 and reply["appended"] is False
    assert reply["versions"] == [
        {"name": "news", "version": "1", "added": 3, "known": 1, "n_items": 63}
    ]
    # The same model grown outside the server ranks exactly as the server serves.
    grown, rows = TwoTower.load(trained_artifact).with_items(
        items_frame([ItemIn.model_validate(i) for i in FRESH])
    )
    assert rows.tolist() == [60, 61, 62]
    ranked = {
        "/v1/search": grown.search(["tech launch today"], 63, now=NOW),
        "/v1/similar": grown.similar(["fresh-tech"], 63, now=NOW, prior_weight=0.0),
    }
    bodies = {
        "/v1/search": {"query": "tech launch today"},
        "/v1/similar": {"item_id": "fresh-tech"},
    }
    for path, expected in ranked.items():
        body = bodies[path]
        served = _post(client, path, {**body, "k": 63, "now": NOW})
        known = np.isfinite(expected[1][0])
        assert served["items"] == expected[0][0][known].tolist()
        np.testing.assert_allclose(served["scores"], expected[1][0][known], rtol=1e-4, atol=1e-5)
        assert "embargoed" not in served["items"], "not served before its publish time"
    launch = _post(client, "/v1/search", {"query": "LAUNCH", "k": 3, "now": NOW})
    assert launch["items"][0] == "fresh-tech", "the title of an added item is searchable"
    later = _post(client, "/v1/search", {"query": "politics vote", "k": 63, "now": NOW + 7200})
    assert "embargoed" in later["items"]
    tech = _post(client, "/v1/category", {"category": "tech", "k": 63, "now": NOW})
    assert "fresh-tech" in tech["items"] and "fresh-sports" not in tech["items"]
    recent = _post(client, "/v1/search", {"query": "final", "k": 63, "max_age_s": 7200, "now": NOW})
    assert recent["items"] == ["fresh-sports"], "publish times reach the age filter"


def test_a_new_item_counts_as_history_at_once(client: TestClient) -> None:
    click = {"user_id": "reader", "item_id": "fresh-tech", "event": "click", "timestamp": NOW}
    assert _post(client, "/v1/events", {"events": [click]})["accepted"] == 1
    before = _post(client, "/v1/recommend", {"user_id": "reader", "k": 5, "now": NOW})
    assert before["strategy"] == "cold_start", "a click on an item no version knows is dropped"
    anonymous = _post(client, "/v1/recommend", {"history": ["fresh-tech"], "k": 5, "now": NOW})
    assert anonymous["strategy"] == "cold_start"

    _add(client, FRESH)
    assert _post(client, "/v1/events", {"events": [click]})["accepted"] == 1
    after = _post(client, "/v1/recommend", {"user_id": "reader", "k": 5, "now": NOW})
    assert after["strategy"] == "personalized" and "fresh-tech" not in after["items"]
    assert after["items"] != before["items"]
    anonymous = _post(client, "/v1/recommend", {"history": ["fresh-tech"], "k": 5, "now": NOW})
    assert anonymous["strategy"] == "personalized"
    assert _post(client, "/v1/similar", {"item_id": "fresh-tech", "k": 5, "now": NOW})["items"]


def _items_body(n: int = 1, **item: Any) -> dict[str, Any]:
    return {"items": [{"item_id": f"n{j}", **item} for j in range(n)]}


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        _items_body(MAX_ITEMS + 1),
        {"items": [{"item_id": "x" * 257}]},
        _items_body(colour="red"),
        _items_body(publish_time=1_700_000_000_000),  # milliseconds
        _items_body(publish_time="1700000000"),
        _items_body(categories="tech"),
        _items_body(title="t" * 1001),
        {"items": [{"title": "no id"}]},
        {"items": [{"item_id": "a"}], "extra": 1},
    ],
    ids=["empty", "too-many", "long-id", "unknown-field", "millis", "string-time",
         "categories-not-a-list", "long-title", "no-id", "unknown-top-field"],
)  # fmt: skip
def test_bad_input_is_422_naming_the_field(client: TestClient, body: dict[str, Any]) -> None:
    reply = client.post("/v1/admin/items", json=body, headers=AUTH)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"][0] == "body"


def test_without_the_token_nothing_is_added(
    client: TestClient, settings: ServerSettings, tmp_path: Path
) -> None:
    body = {"items": FRESH}
    assert client.post("/v1/admin/items", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/v1/admin/items", json=body, headers=wrong).status_code == 401
    assert client.post("/v1/similar", json={"item_id": "fresh-tech"}).status_code == 404
    closed = settings.model_copy(
        update={"admin_token": None, "event_log_path": tmp_path / "closed.sqlite3"}
    )
    with TestClient(create_app(closed)) as other:
        assert other.post("/v1/admin/items", json=body).status_code == 403


def test_the_catalog_file_is_followed_and_applied_to_versions_loaded_later(
    tmp_path: Path, settings: ServerSettings, second_artifact: Path
) -> None:
    catalog = tmp_path / "updates" / "items.jsonl"
    shutil.copytree(second_artifact, settings.model_repository / "news" / "2")
    config = settings.model_copy(
        update={"catalog_updates_path": catalog, "version_policy": "pinned", "pinned_version": "1"}
    )
    with TestClient(create_app(config)) as client:
        assert catalog.is_file(), "created at start"
        assert _add(client, FRESH[:1])["appended"] is True
        assert json.loads(catalog.read_text().splitlines()[0])["item_id"] == "fresh-tech"
        # Another writer: a bad line is skipped, an unfinished one waits for its end.
        with open(catalog, "a") as f:
            f.write('{"item_id": "from-file", "categories": ["sports"]}\n{"oops": 1}\n')
            f.write('{"item_id": "half')
        deadline = time.monotonic() + 10
        while client.post("/v1/similar", json={"item_id": "from-file"}).status_code != 200:
            assert time.monotonic() < deadline, "the catalog file was not applied in 10 s"
            time.sleep(0.05)
        with open(catalog, "a") as f:
            f.write('-written"}\n')
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while "half-written" not in ctx.manager.current().model.item_index:
            assert time.monotonic() < deadline, "the finished line was not applied in 10 s"
            time.sleep(0.05)
        assert ctx.items.skipped == 1
        # A version loaded later, and a server started again, read the whole file.
        reply = client.post("/v1/admin/models/load", json={"version": "2"}, headers=AUTH)
        assert reply.status_code == 200, reply.text
        loaded = {b.version: b for b in ctx.manager.loaded()}
        assert {"fresh-tech", "from-file", "half-written"} <= set(loaded["2"].item_names)
        assert loaded["2"].index.n_items == loaded["1"].index.n_items == 63
    with TestClient(create_app(config)) as again:
        assert again.post("/v1/similar", json={"item_id": "half-written"}).status_code == 200


def test_growing_swaps_the_served_bundle_and_leaves_the_old_one_whole(
    settings: ServerSettings,
) -> None:
    manager = ModelManager(ModelRepository(settings.model_repository))
    old = manager.switch("news", "1")
    updates = ItemUpdates(manager)
    versions, appended = updates.add([ItemIn.model_validate(i) for i in FRESH])
    assert not appended and [v.added for v in versions] == [3]
    new = manager.current()
    assert new is not old and [b is new for b in manager.loaded()] == [True]
    assert old.index.n_items == len(old.item_names) == len(old.model.item_ids_) == 60
    assert old.catalog.n_items == 60 and "fresh-tech" not in old.model.item_index
    assert new.index.n_items == len(new.item_names) == new.catalog.n_items == 63
    assert (
        bool(new.catalog.category_masks["tech"][60]) and not new.catalog.category_masks["tech"][61]
    )
    assert new.catalog.publish_time[61] == NOW - 3600
    assert new.releases.unreleased(NOW).tolist() == [62]
    np.testing.assert_array_equal(new.index.vectors[:60], old.index.vectors)
    assert new.histories is old.histories and new.known_users is old.known_users
    # Applied again: nothing is new, nothing is copied.
    again, rows = grow(new, [ItemIn.model_validate(i) for i in FRESH])
    assert again is new and len(rows) == 0
    assert not manager.replace(old, new), "only the loaded bundle of a version is replaced"


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_an_appended_index_finds_the_new_rows_as_a_fresh_build_does(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = IndexParams(kind=kind, ivf_nlist=8, ivf_nprobe=8)  # type: ignore[arg-type]
    old = VectorIndex(vectors[:300], params)
    grown = old.appended(vectors)
    assert grown.n_items == 400 and old.n_items == 300 and grown.kind == old.kind == kind
    ids, _ = grown.search(vectors[300:], 1)
    assert (ids[:, 0] == np.arange(300, 400)).mean() > 0.95, "each new row is its own neighbour"
    assert old.search(vectors[300:], 1)[0].max() < 300, "the old index is unchanged"
    with pytest.raises(ValueError, match="n >= 300"):
        old.appended(vectors[:10])


def _resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
    return ModelRef(model or "news", version or "1")


@pytest.fixture()
def bandit_client(settings: ServerSettings) -> Iterator[TestClient]:
    config = ExperimentConfig.model_validate(
        {
            "name": "fresh",
            "control": "control",
            "primary_metric": "clicks/impressions",
            "variants": [
                {"name": "control", "version": "1"},
                {
                    "name": "bandit",
                    "version": "1",
                    "policy": {"kind": "softmax_bandit", "pool": 10},
                },
            ],
        }
    )
    with ExperimentStore(settings.event_log_path) as store:
        store.create(config, _resolve)
        store.start(config.name, _resolve)
    fast = settings.model_copy(update={"experiment_refresh_s": 0.05})
    with TestClient(create_app(fast)) as client:
        yield client


def test_an_experiment_arm_serves_its_grown_version_and_its_bandit_keeps_its_counts(
    bandit_client: TestClient,
) -> None:
    runtime = bandit_client.app.state.ctx.experiments  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while ("fresh", "bandit") not in runtime.learning_arms():
        assert time.monotonic() < deadline, "the experiment was not applied in 10 s"
        time.sleep(0.05)
    arm = runtime.learning_arms()[("fresh", "bandit")]
    bandit = arm.policy
    assert isinstance(bandit, SoftmaxBandit) and bandit.n_items == 60
    bandit.update(np.array([3, 3, 7]), 1.0, np.array([1.0, 0.0, 1.0]))

    _add(bandit_client, FRESH)  # the reply comes once the arms serve the grown version
    grown = runtime.learning_arms()[("fresh", "bandit")]
    assert grown.bundle.index.n_items == 63 and grown.bundle is not arm.bundle
    assert grown.policy is bandit and bandit.n_items == 63
    assert bandit.clicks[[3, 7, 60]].tolist() == [1.0, 1.0, 0.0]
    assert bandit.impressions[3] == 2.0
    for i in range(20):  # both variants serve the new item as history
        body = {"user_id": f"visitor{i}", "history": ["fresh-tech"], "k": 5, "now": NOW}
        assert _post(bandit_client, "/v1/recommend", body)["strategy"] == "personalized"


def test_a_server_starts_with_the_file_of_a_previous_run(
    tmp_path: Path, trained_artifact: Path
) -> None:
    catalog = tmp_path / "items.jsonl"
    catalog.write_text("".join(json.dumps(i) + "\n" for i in FRESH))
    settings = ServerSettings(
        model_repository=make_repository(tmp_path / "models", trained_artifact),
        event_log_path=tmp_path / "events.sqlite3",
        catalog_updates_path=catalog,
        replay=True,
    )
    with TestClient(create_app(settings)) as client:
        served = _post(client, "/v1/similar", {"item_id": "fresh-sports", "k": 62, "now": NOW})
        assert "fresh-tech" in served["items"] and "embargoed" not in served["items"]


def test_an_unloaded_version_is_not_kept_alive_by_the_file_it_read(
    tmp_path: Path, settings: ServerSettings, second_artifact: Path
) -> None:
    shutil.copytree(second_artifact, settings.model_repository / "news" / "2")
    manager = ModelManager(ModelRepository(settings.model_repository))
    updates = ItemUpdates(manager, tmp_path / "items.jsonl")
    manager.prepare = updates.prepare
    manager.switch("news", "1")
    updates.add([ItemIn.model_validate(i) for i in FRESH])
    second = weakref.ref(manager.load("news", "2"))
    assert "fresh-tech" in second().item_names  # type: ignore[union-attr]
    manager.unload("news", "2")
    gc.collect()
    assert second() is None
