"""The Ray executor: the same artifacts (same digests) as the local executor, retries, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.pipelines import LocalExecutor, PipelineError, RunStore
from recops.pipelines.training import training_pipeline
from tests.pipelines import components as toy
from tests.pipelines.training_fixtures import tiny_config

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")


def _executor(folder: Path):
    from recops.pipelines.ray_executor import RayExecutor

    return RayExecutor(folder / "artifacts", RunStore(folder / "runs.sqlite3"))


def _digests(record) -> dict[str, dict[str, str | None]]:
    return {s.name: s.outputs for s in record.steps}


def test_a_run_on_ray_equals_the_local_run(local_ray: None, tmp_path: Path) -> None:
    on_ray = _executor(tmp_path / "ray").run(toy.toy, n=10, log_dir=str(tmp_path))
    local = LocalExecutor(tmp_path / "local", RunStore(tmp_path / "local.sqlite3")).run(
        toy.toy, n=10, log_dir=str(tmp_path)
    )
    assert on_ray.record.executor == "ray"
    assert _digests(on_ray.record) == _digests(local.record)
    again = _executor(tmp_path / "ray").run(toy.toy, n=10, log_dir=str(tmp_path))
    assert {s.status for s in again.record.steps} == {"cached"}
    assert _digests(again.record) == _digests(local.record)
    assert on_ray.value("total") == local.value("total")
    assert on_ray.record.step("make").log is not None


def test_the_training_pipeline_on_ray_gives_the_local_artifacts(
    local_ray: None, tmp_path: Path
) -> None:
    on_ray = _executor(tmp_path / "ray").run(
        training_pipeline, config=tiny_config(tmp_path / "ray")
    )
    local = LocalExecutor(tmp_path / "local", RunStore(tmp_path / "local.sqlite3")).run(
        training_pipeline, config=tiny_config(tmp_path / "local")
    )
    ray_digests, local_digests = _digests(on_ray.record), _digests(local.record)
    # publish names its repository folder; everything else is the same content.
    ray_digests.pop("publish"), local_digests.pop("publish")
    assert ray_digests == local_digests
    assert on_ray.value("publish").model_digest == local_digests["train"]["output"]
    assert (tmp_path / "ray" / "models" / "two_tower" / "1" / "config.json").is_file()


def test_retries_and_timeouts_on_ray(local_ray: None, tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    ok = executor.run(toy.toy_with_flaky, n=3, log_dir=str(tmp_path), failures=1, retries=1)
    assert ok.record.step("flaky").attempts == 2
    with pytest.raises(PipelineError, match="timeout"):
        executor.run(toy.toy_slow, seconds=30.0, timeout_s=1.0)


def test_memory_stores_are_refused(local_ray: None, tmp_path: Path) -> None:
    from recops.pipelines.ray_executor import RayExecutor

    with pytest.raises(ValueError, match="memory://"):
        RayExecutor("memory://nope", RunStore(tmp_path / "runs.sqlite3"))
