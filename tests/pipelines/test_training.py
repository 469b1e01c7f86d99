"""recops' training pipeline end to end on a tiny world: a servable version, cached reruns."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from recops.pipelines import LocalExecutor, PipelineError
from recops.pipelines.training import training_pipeline
from recops.pipelines.training.evaluate import OfflineEvaluation
from recops.pipelines.training.ope import OffPolicyEvaluation
from recops.pipelines.training.publish import ModelVersion
from recops.pipelines.training.validate import DataReport
from recops.serving.repository import ModelManager, ModelRepository
from tests.pipelines.training_fixtures import exploring_log, tiny_config


def statuses(result) -> dict[str, str]:
    return {s.name: s.status for s in result.record.steps}


def test_the_training_pipeline_publishes_a_servable_version_and_reruns_from_cache(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    log = exploring_log(tmp_path / "events.sqlite3")
    config = tiny_config(tmp_path, ope={"event_log": str(log), "min_requests": 50})
    first = executor.run(training_pipeline, config=config)
    assert set(statuses(first).values()) == {"succeeded"}
    assert list(statuses(first)) == [
        "ingest", "validate", "split", "train", "champion", "evaluate_models",
        "exposures", "off_policy", "publish",
    ]  # fmt: skip

    version = first.value("publish")
    assert isinstance(version, ModelVersion) and version.version == "1" and version.new
    assert version.model_digest == first.record.step("train").outputs["output"]
    manager = ModelManager(ModelRepository(tmp_path / "models"))
    served = manager.switch("two_tower", "1")
    assert served.index.n_items == 200 and len(served.catalog.publish_time) == 200
    top = served.model.recommend([str(served.model.user_ids_[0])], k=5)
    assert len(top) == 5

    offline = first.value("evaluate_models")
    assert isinstance(offline, OfflineEvaluation) and offline.champion is None
    recall = offline.candidate.metrics["all"]["recall@20"]
    assert recall.mean is not None and 0 < recall.mean <= 1
    ope = first.value("off_policy")
    assert isinstance(ope, OffPolicyEvaluation) and ope.evaluated and ope.requests == 150
    assert {"ips", "snips", "dm", "dr"} <= {e.estimator for e in ope.estimates}
    assert ope.logged_by_version.keys() == {"two_tower:0"}
    # 10 random candidates of 200 items per request: they hold little of the model's
    # own top-3, which the gate's OPE rule is told (support).
    assert ope.support is not None and 0.0 <= ope.support < 0.5
    report = first.value("validate", "report")
    assert isinstance(report, DataReport) and not report.baseline

    # The second run compares with the first run's statistics and its champion (v1,
    # the same model): those steps run, everything else is cached, nothing is republished.
    second = executor.run(training_pipeline, config=config)
    assert statuses(second) == {
        "ingest": "cached",
        "validate": "succeeded",
        "split": "cached",
        "train": "cached",
        "champion": "succeeded",
        "evaluate_models": "succeeded",
        "exposures": "cached",
        "off_policy": "cached",
        "publish": "succeeded",
    }
    assert second.value("validate", "report").passed
    assert second.value("evaluate_models").champion_version == "1"
    assert second.value("publish").version == "1" and not second.value("publish").new
    third = executor.run(training_pipeline, config=config)
    assert {k for k, v in statuses(third).items() if v != "cached"} == {"publish"}
    assert sorted(p.name for p in (tmp_path / "models" / "two_tower").iterdir()) == ["1"]

    # A new model (another seed) becomes version 2, evaluated against version 1.
    reseeded = tiny_config(
        tmp_path,
        ope={"event_log": str(log), "min_requests": 50},
        model={**config.model.model_dump(), "seed": 7},
    )
    fourth = executor.run(training_pipeline, config=reseeded)
    assert fourth.value("publish").version == "2"
    difference = fourth.value("evaluate_models").difference
    assert difference is not None and "ndcg@20" in difference


def test_a_failed_data_check_stops_the_run_when_asked(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    executor.run(training_pipeline, config=tiny_config(tmp_path))
    smaller = tiny_config(
        tmp_path,
        source={"kind": "world", "world": {"n_users": 60, "n_items": 200, "days": 4, "seed": 1}},
        checks={"max_volume_change": 0.2, "fail_on_check": True},
    )
    with pytest.raises(PipelineError, match="data checks failed: volume"):
        executor.run(training_pipeline, config=smaller)


def test_the_pipeline_publishes_to_object_storage(executor: LocalExecutor, tmp_path: Path) -> None:
    # memory:// stands in for s3:// or gs://: the same fsspec calls, no rename.
    url = f"memory://recops-publish-{uuid.uuid4().hex}"
    config = tiny_config(tmp_path, publish={"repository": url, "name": "two_tower"})
    first = executor.run(training_pipeline, config=config)
    assert first.value("publish").version == "1" and first.value("publish").new
    repository = ModelRepository(url, cache_dir=tmp_path / "cache")
    assert repository.models() == {"two_tower": ["1"]}
    served = ModelManager(repository).switch("two_tower", "1")
    assert served.index.n_items == 200 and len(served.catalog.publish_time) == 200
    # The rerun finds the champion there and republishes nothing.
    second = executor.run(training_pipeline, config=config)
    assert second.value("evaluate_models").champion_version == "1"
    assert second.value("publish").version == "1" and not second.value("publish").new
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(root, recursive=True)
