"""The gated training pipeline: every run tracked, the model registered, gated and deployed."""

from __future__ import annotations

import json
from pathlib import Path

from recops.pipelines import LocalExecutor
from recops.registry import Registry
from recops.registry.config import GatedTrainingConfig
from recops.registry.pipeline import gated_training_pipeline
from tests.pipelines.training_fixtures import TINY_MODEL, WORLD, exploring_log


def _config(tmp_path: Path, tracking_uri: str, **sections: object) -> GatedTrainingConfig:
    document: dict[str, object] = {
        "source": {"kind": "world", "world": WORLD},
        "model": TINY_MODEL,
        "evaluate": {"n_boot": 20},
        "publish": {"repository": str(tmp_path / "models"), "name": "two_tower"},
        "registry": {"tracking_uri": tracking_uri},
        "ope": {"event_log": str(tmp_path / "events.sqlite3"), "min_requests": 50},
        **sections,
    }
    return GatedTrainingConfig.model_validate(document)


def test_runs_are_tracked_registered_gated_and_deployed_to_challenger(
    executor: LocalExecutor, registry: Registry, tracking_uri: str, tmp_path: Path
) -> None:
    exploring_log(tmp_path / "events.sqlite3")
    config = _config(tmp_path, tracking_uri)
    first = executor.run(gated_training_pipeline, config=config)
    names = [s.name for s in first.record.steps]
    assert names[-5:] == ["publish", "track", "register", "gate", "deploy"]
    assert names.index("champion") > names.index("train")

    run = first.value("track")
    mlflow_run = registry.client.get_run(run.run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["model.epochs"] == "2"
    assert mlflow_run.data.params["source.kind"] == "world"
    assert mlflow_run.data.params["gate.rules.0.metric"] == "recall@20"
    metrics = mlflow_run.data.metrics
    assert 0 < metrics["offline.candidate.metrics.all.recall_at_20.mean"] <= 1
    assert "ope.snips.ci_low" in metrics and metrics["gate.passed"] == 1.0
    ingested = first.record.step("ingest").outputs["output"]
    assert mlflow_run.data.tags["recops.data_version"] == ingested == run.data_version
    model_digest = first.record.step("train").outputs["output"]
    assert mlflow_run.data.tags["recops.model_digest"] == model_digest
    artifacts = {a.path for a in registry.client.list_artifacts(run.run_id, "reports")}
    assert artifacts == {
        f"reports/{n}.json"
        for n in ("config", "data_report", "offline", "ope", "publish", "gate", "deploy")
    }
    model_files = {a.path for a in registry.client.list_artifacts(run.run_id, "model")}
    assert {"model/config.json", "model/weights.safetensors", "model/items.parquet"} <= model_files
    assert not any(p.endswith((".pkl", ".pickle", "MLmodel")) for p in model_files)

    version = registry.version("two_tower", "1")
    assert version.model_digest == model_digest and version.repository_version == "1"
    assert version.data_version == ingested and version.gate == "passed"
    assert version.tags["recops.gate.rule.smoke_test"].startswith("passed: loaded and answered")
    assert version.tags["recops.gate.rule.offline:recall_at_20:all"].startswith("skipped")
    stored = registry.gate_result("two_tower", "1")
    assert stored is not None and stored == first.value("gate")
    assert registry.challenger("two_tower").version == "1"  # type: ignore[union-attr]
    assert registry.champion("two_tower") is None  # never moved by the pipeline
    deployed = first.value("deploy")
    assert deployed.moved and deployed.previous is None
    assert registry.audit("two_tower")[0].action == "deploy"

    # The same data and model again: a second MLflow run, the same registered version.
    second = executor.run(gated_training_pipeline, config=config)
    assert second.value("track").run_id != run.run_id
    assert not second.value("register").new and second.value("register").version == "1"
    assert second.value("deploy").message == "version 1 is already the challenger"

    # Version 1 becomes champion; a new model is judged against it by a strict rule and fails.
    registry.promote("two_tower", "1", actor="test", reason="first champion")
    strict = _config(
        tmp_path,
        tracking_uri,
        model={**TINY_MODEL, "seed": 7},
        gate={"rules": [{"kind": "offline", "metric": "recall@20", "min_value": 0.99},
                        {"kind": "smoke_test"}]},
    )  # fmt: skip
    third = executor.run(gated_training_pipeline, config=strict)
    assert third.value("evaluate_models").champion_version == "1"
    verdict = third.value("gate")
    assert not verdict.passed and verdict.version == "2"
    assert "< 0.9900 = champion two_tower/1" in verdict.summary()
    refused = registry.version("two_tower", "2")
    assert refused.gate == "failed"
    assert json.loads(refused.tags["recops.gate.result"])["passed"] is False
    assert registry.challenger("two_tower").version == "1"  # type: ignore[union-attr]
    assert not third.value("deploy").moved
