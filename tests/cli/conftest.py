"""Every CLI test gets an MLflow store in its own folder, never one in the checkout.

``recops pipeline run train`` tracks and registers in MLflow, by default under
``$RECOPS_HOME`` (``./recops-data``); ``MLFLOW_TRACKING_URI`` points it here instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# The tiny world's log of the controller's tests, for `recops ct` (test_ct_cli.py).
from tests.ct.conftest import site  # noqa: F401
from tests.registry.conftest import mlflow_template, tracking_uri  # noqa: F401

# The real tiny models of the serving tests, for `recops model` (test_model_cli.py).
from tests.serving.conftest import second_artifact, trained_artifact  # noqa: F401


@pytest.fixture(autouse=True)
def _mlflow_store_in_the_test_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db")
