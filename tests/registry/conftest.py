"""Fixtures: an MLflow SQLite store per test (copied from one made once), and versions in it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the registry needs MLflow: pip install mlflow-skinny")

from recops.pipelines.training.publish import ModelVersion
from recops.registry import Registry
from recops.registry.gates import GateResult, RuleOutcome
from recops.registry.settings import RegistryConfig, sqlite_uri
from recops.registry.steps import Registration, record_gate, register
from recops.registry.tracking import track_run
from tests.pipelines.conftest import executor, runs, store  # noqa: F401
from tests.serving.conftest import second_artifact, trained_artifact  # noqa: F401

MODEL = "news"


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow store with its tables made (creating them takes a second)."""
    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Registry(sqlite_uri(db)).models()
    return db


@pytest.fixture
def tracking_uri(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store for this test, also as ``MLFLOW_TRACKING_URI``."""
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    shutil.copy(mlflow_template, db)
    uri = sqlite_uri(db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def registry(tracking_uri: str) -> Iterator[Registry]:
    yield Registry(tracking_uri)


def add_version(
    registry: Registry, repository: Path, artifact: Path, folder: str, digest: str
) -> Registration:
    """Publish ``artifact`` as ``<repository>/news/<folder>/`` and register it (a real run)."""
    target = repository / MODEL / folder
    shutil.copytree(artifact, target)
    (target / "recops-pipeline.json").write_text(json.dumps({"model_digest": digest}))
    published = ModelVersion(
        repository=str(repository), name=MODEL, version=folder, path=str(target),
        model_digest=digest, new=True, items=0, index="exact",
    )  # fmt: skip
    run = track_run(registry, "tests", f"run-{folder}", {}, {}, {}, {}, f"data-{folder}")
    return register(run, published, RegistryConfig(tracking_uri=registry.tracking_uri))


def judge(registry: Registry, registered: Registration, passed: bool) -> GateResult:
    """Store a gate verdict on a version, as the pipeline's gate does."""
    result = GateResult(
        passed=passed, model=registered.model, version=registered.version,
        repository_version=registered.repository_version, champion_version=None,
        outcomes=(RuleOutcome(rule="smoke_test", status="passed" if passed else "failed",
                              value=1.0, threshold=1.0, message="set by the test"),),
        decided_at=0.0,
    )  # fmt: skip
    record_gate(registry, result, registered.run_id)
    return result
