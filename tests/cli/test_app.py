"""The ``recops`` application itself: what every command shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_fresh_registry_does_not_announce_its_tables(tmp_path: Path) -> None:
    # MLflow logs two timestamped INFO lines when it creates the embedded store's
    # tables; `recops model list` on a new project printed them above its answer.
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("MLFLOW_REGISTRY_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", "from recops.cli import app; app()", "model", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow.db").exists()  # the store was created by this command
    assert "no registered versions" in done.stdout
    assert "INFO" not in done.stderr and "database tables" not in done.stderr, done.stderr
