"""The Kubeflow compiler: the spec loads back with its DAG; a step runs as in a container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recops.pipelines.kubeflow import compile_kfp, run_container_step
from recops.pipelines.training import training_pipeline
from tests.pipelines import components as toy
from tests.pipelines.training_fixtures import tiny_config

kfp_components = pytest.importorskip("kfp.components", reason="the kfp SDK is not installed")


def _dag(path: Path) -> dict[str, tuple[list[str], dict[str, tuple[str, str]]]]:
    loaded = kfp_components.load_component_from_file(str(path))
    tasks = loaded.pipeline_spec.root.dag.tasks
    return {
        name: (
            sorted(task.dependent_tasks),
            {
                k: (
                    v.task_output_artifact.producer_task,
                    v.task_output_artifact.output_artifact_key,
                )
                for k, v in task.inputs.artifacts.items()
            },
        )
        for name, task in tasks.items()
    }


def test_the_training_pipeline_compiles_to_a_spec_that_loads_back(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ope={"event_log": "recops-events.sqlite3"})
    graph = training_pipeline.trace({"config": config})
    out = compile_kfp(graph, tmp_path / "train.yaml", "registry.example/recops:1.2")
    dag = _dag(out)
    assert dag == {
        "ingest": ([], {}),
        "validate": (["ingest"], {"data": ("ingest", "output")}),
        "split": (["validate"], {"data": ("validate", "data")}),
        "train": (["split"], {"data": ("split", "output")}),
        "champion": ([], {}),
        "evaluate-models": (
            ["champion", "split", "train"],
            {
                "data": ("split", "output"),
                "model": ("train", "output"),
                "champion": ("champion", "output"),
            },
        ),
        "exposures": ([], {}),
        "off-policy": (
            ["exposures", "train", "validate"],
            {
                "model": ("train", "output"),
                "logged": ("exposures", "output"),
                "data": ("validate", "data"),
            },
        ),
        "publish": (
            ["train", "validate"],
            {"model": ("train", "output"), "data": ("validate", "data")},
        ),
    }
    spec = out.read_text()
    assert spec.count("image: registry.example/recops:1.2") == len(dag)
    assert "recops.pipelines.training.train:train" in spec
    assert "maxRetryCount: 2" in spec  # ingest retries OSErrors twice


def test_a_step_runs_in_a_container_on_artifact_folders(tmp_path: Path) -> None:
    made = run_container_step(
        toy.make.ref, {"n": 6, "log_dir": str(tmp_path)}, {}, {"output": str(tmp_path / "a")}
    )
    halves = run_container_step(
        toy.halve.ref,
        {"log_dir": str(tmp_path)},
        {"frame": str(tmp_path / "a")},
        {"head": str(tmp_path / "h"), "tail": str(tmp_path / "t")},
    )
    total = run_container_step(
        toy.total.ref, {"log_dir": str(tmp_path)}, {"frame": str(tmp_path / "t")},
        {"output": str(tmp_path / "s")}, timeout_s=30,
    )  # fmt: skip
    assert made["output"] and halves["head"] != halves["tail"] and total["output"]
    assert json.loads((tmp_path / "s" / "value.json").read_text()) == {"rows": 3, "total": 50.0}
    # An absent optional output is a folder that says so; the next step reads None.
    absent = run_container_step(
        toy.maybe.ref, {"present": False}, {"stats": str(tmp_path / "s")},
        {"output": str(tmp_path / "m")},
    )  # fmt: skip
    assert absent == {"output": None}
    compared = run_container_step(
        toy.compare.ref, {}, {"stats": str(tmp_path / "s"), "baseline": str(tmp_path / "m")},
        {"output": str(tmp_path / "c")},
    )  # fmt: skip
    assert compared["output"] is not None
    assert json.loads((tmp_path / "c" / "value.json").read_text()) == {"change": None}
    with pytest.raises(ValueError, match="--output"):
        run_container_step(toy.make.ref, {"n": 1, "log_dir": str(tmp_path)}, {}, {})
