"""Experiments inside the server: assignment, variants, exposures logged by the server, fallback."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recops.experiments.config import ExperimentConfig, ModelRef
from recops.experiments.store import ExperimentStore
from recops.serving.app import create_app
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.settings import ServerSettings

from .conftest import START, make_repository

NOW = START + 30 * 86400


def _resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
    return ModelRef(model or "news", version or "2")


def _config(**overrides: Any) -> ExperimentConfig:
    values: dict[str, Any] = {
        "name": "ranker",
        "control": "control",
        "primary_metric": "clicks/impressions",
        "variants": [
            {"name": "control", "version": "1"},
            {
                "name": "explore",
                "version": "2",
                "policy": {"kind": "plackett_luce", "temperature": 0.5, "pool": 10},
            },
        ],
    }
    values.update(overrides)
    return ExperimentConfig.model_validate(values)


@pytest.fixture()
def repo_settings(tmp_path: Path, trained_artifact: Path, second_artifact: Path) -> ServerSettings:
    repo = make_repository(tmp_path / "models", trained_artifact)
    shutil.copytree(second_artifact, repo / "news" / "2")
    return ServerSettings(
        model_repository=repo,
        version_policy="pinned",
        pinned_version="1",
        event_log_path=tmp_path / "events.sqlite3",
        experiment_refresh_s=0.05,
        replay=True,  # requests carry the tiny world's time
    )


@pytest.fixture()
def client(repo_settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(repo_settings)) as test_client:
        yield test_client


def _start(settings: ServerSettings, config: ExperimentConfig) -> None:
    with ExperimentStore(settings.event_log_path) as store:
        store.create(config, _resolve)
        store.start(config.name, _resolve)


def _wait_for_experiments(client: TestClient, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running: list[dict[str, Any]] = client.get("/v1/experiments").json()["experiments"]
        if len(running) == n:
            return running
        time.sleep(0.05)
    raise AssertionError(f"the server did not apply {n} experiment(s) in 10 s")


def _recommend(client: TestClient, **body: Any) -> dict[str, Any]:
    reply = client.post("/v1/recommend", json={"k": 5, "now": NOW, **body})
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def _exposures(settings: ServerSettings) -> list[Any]:
    log = SQLiteEventLog(settings.event_log_path)
    try:
        return [x for _, x in log.read_exposures(limit=1_000_000)]
    finally:
        log.close()


def test_every_slate_is_logged_and_clicks_join_by_request_id(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    reply = _recommend(client, user_id="u1")
    assert reply["request_id"] and reply["experiment"] is None and reply["variant"] is None
    second = _recommend(client, user_id="u1")
    assert second["request_id"] != reply["request_id"]
    click = {
        "user_id": "u1",
        "item_id": reply["items"][2],
        "event": "click",
        "request_id": reply["request_id"],
        "position": 2,
    }
    assert client.post("/v1/events", json={"events": [click]}).status_code == 200
    client.get("/v1/models")  # any request: the writer has committed by now or soon
    deadline = time.monotonic() + 5
    while len(exposures := _exposures(repo_settings)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    first = next(x for x in exposures if x.request_id == reply["request_id"])
    assert (first.unit, first.model, first.version) == ("u1", "news", "1")
    assert list(first.items) == reply["items"] and first.policy == {"kind": "greedy"}
    assert list(first.propensities) == [1.0] * 5
    assert list(first.scores) == pytest.approx(reply["scores"])
    assert first.context is not None and first.context["strategy"] == reply["strategy"]
    log = SQLiteEventLog(repo_settings.event_log_path)
    try:
        ((_, joined),) = log.read_responses()
    finally:
        log.close()
    assert joined.request_id == reply["request_id"] and joined.item_id == reply["items"][2]


def test_units_get_their_variant_and_exposures_carry_exact_propensities(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    _start(repo_settings, _config())
    (running,) = _wait_for_experiments(client, 1)
    assert [v["model"] for v in running["variants"]] == ["news/1", "news/2"]
    seen: dict[str, set[tuple[str | None, str]]] = {}
    for i in range(60):
        for _ in range(2):  # twice each: the same unit must get the same variant
            reply = _recommend(client, user_id=f"u{i}")
            assert reply["experiment"] == "ranker"
            seen.setdefault(f"u{i}", set()).add((reply["variant"], reply["version"]))
    assert all(len(v) == 1 for v in seen.values()), "a unit changed variant"
    variants = {next(iter(v)) for v in seen.values()}
    assert variants == {("control", "1"), ("explore", "2")}
    deadline = time.monotonic() + 5
    while len(exposures := _exposures(repo_settings)) < 120 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(exposures) == 120
    for x in exposures:
        assert x.experiment == "ranker"
        if x.variant == "control":
            assert list(x.propensities) == [1.0] * 5 and x.candidates is None
        else:
            assert x.policy["kind"] == "plackett_luce" and x.version == "2"
            assert all(0.0 < p <= 1.0 for p in x.propensities)
            assert x.candidates is not None and set(x.items) <= set(x.candidates)
            assert len(x.candidates) == len(x.candidate_scores or ())
    log = SQLiteEventLog(repo_settings.event_log_path)
    try:
        assignments = log.read_assignments("ranker")
    finally:
        log.close()
    # Logged once per unit, whatever the number of requests.
    assert sorted(a.unit for a in assignments) == sorted(seen)
    assert {a.unit: a.variant for a in assignments} == {
        u: next(iter(v))[0] for u, v in seen.items()
    }


def test_the_exposure_counter_counts_per_experiment_and_variant(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    def counted() -> dict[str, float]:
        lines = client.get("/metrics").text.splitlines()
        prefix = "recops_exposures_total{"
        return {
            line[len(prefix) : line.index("}")]: float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith(prefix)
        }

    _recommend(client, user_id="u1")
    _recommend(client, user_id="u2")
    assert counted() == {'experiment="none",variant="none"': 2.0}
    _start(repo_settings, _config())
    _wait_for_experiments(client, 1)
    variants = [_recommend(client, user_id=f"u{i}")["variant"] for i in range(20)]
    after = counted()
    for variant in ("control", "explore"):
        key = f'experiment="ranker",variant="{variant}"'
        assert after.get(key, 0.0) == variants.count(variant)
    assert after['experiment="none",variant="none"'] == 2.0


def test_anonymous_units(client: TestClient, repo_settings: ServerSettings) -> None:
    _start(repo_settings, _config(unit="anonymous_id"))
    _wait_for_experiments(client, 1)
    assert _recommend(client, user_id="u1")["experiment"] is None
    reply = _recommend(client, anonymous_id="cookie-1", history=["i3"])
    assert reply["experiment"] == "ranker" and reply["strategy"] == "personalized"
    again = _recommend(client, anonymous_id="cookie-1")
    assert again["variant"] == reply["variant"]


def test_a_variant_whose_version_fails_to_load_falls_back_to_control(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    # Version 2 is pinned at start, then broken on disk before the server loads it.
    broken = repo_settings.model_repository / "news" / "2"
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    _start(repo_settings, _config())
    (running,) = _wait_for_experiments(client, 1)
    explore = running["variants"][1]
    assert explore["model"] == "news/1" and "could not be loaded" in explore["fallback"]
    variants = {_recommend(client, user_id=f"u{i}")["variant"] for i in range(40)}
    assert variants == {"control", "explore"}  # assigned as before, served by control
    deadline = time.monotonic() + 5
    while len(exposures := _exposures(repo_settings)) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    fallen = [x for x in exposures if x.variant == "explore"]
    assert fallen and all(x.version == "1" and x.policy == {"kind": "greedy"} for x in fallen)
    assert all(x.context is not None and "fallback" in x.context for x in fallen)


def test_stopping_returns_units_to_the_default(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    _start(repo_settings, _config())
    _wait_for_experiments(client, 1)
    assert _recommend(client, user_id="u1")["experiment"] == "ranker"
    with ExperimentStore(repo_settings.event_log_path) as store:
        store.stop("ranker")
    _wait_for_experiments(client, 0)
    reply = _recommend(client, user_id="u1")
    assert (reply["experiment"], reply["version"]) == (None, "1")


def test_a_bandit_variant_learns_from_clicks_joined_to_its_exposures(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    bandit = {"kind": "softmax_bandit", "pool": 10, "explore_slots": 2, "bonus": 2.0}
    config = _config(
        variants=[
            {"name": "control", "version": "1"},
            {"name": "explore", "version": "2", "policy": bandit},
        ]
    )
    _start(repo_settings, config)
    _wait_for_experiments(client, 1)
    clicked = 0
    for i in range(40):
        reply = _recommend(client, user_id=f"u{i}")
        if reply["variant"] != "explore":
            continue
        event = {
            "user_id": f"u{i}",
            "item_id": reply["items"][0],
            "event": "click",
            "request_id": reply["request_id"],
        }
        client.post("/v1/events", json={"events": [event, event]})  # a double click
        clicked += 1
    assert clicked > 5
    arm = client.app.state.ctx.experiments.learning_arms()[("ranker", "explore")]  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while arm.policy.clicks.sum() < clicked and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arm.policy.clicks.sum() == clicked  # each slate's click once
    assert arm.policy.impressions.sum() == 5 * clicked


def test_an_interleaving_experiment_merges_both_arms_and_logs_who_contributed(
    client: TestClient, repo_settings: ServerSettings
) -> None:
    config = _config(
        type="interleaving",
        variants=[{"name": "control", "version": "1"}, {"name": "challenger", "version": "2"}],
    )
    _start(repo_settings, config)
    _wait_for_experiments(client, 1)
    replies = [_recommend(client, user_id=f"u{i}", k=6) for i in range(20)]
    assert {r["variant"] for r in replies} == {"interleaved"}
    assert all(len(set(r["items"])) == len(r["items"]) == 6 for r in replies)
    deadline = time.monotonic() + 5
    while len(exposures := _exposures(repo_settings)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    for x in exposures:
        assert x.policy["kind"] == "team_draft" and x.sources is not None
        assert set(x.sources) <= {"control", "challenger"} and len(x.sources) == 6
        assert all(0.0 < p <= 1.0 for p in x.propensities)
        assert x.context is not None and x.context["models"] == ["news/1", "news/2"]
    # Each arm contributes about half the positions.
    share = np.mean([s == "control" for x in exposures for s in x.sources or ()])
    assert 0.35 < share < 0.65
