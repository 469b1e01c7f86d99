"""Where pipelines keep their state when nothing else is said.

Everything lives under the project's data folder: ``$RECOPS_HOME``, else
``./recops-data``. The run store is ``<home>/pipelines/runs.sqlite3`` and the
artifact store ``<home>/pipelines/artifacts`` (a pipeline config can point the
artifact store at any fsspec URL, e.g. ``s3://bucket/recops/artifacts``).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RECOPS_HOME"
DEFAULT_HOME = "recops-data"


def project_dir() -> Path:
    """The project's data folder: ``$RECOPS_HOME``, else ``./recops-data``."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


def default_run_store() -> Path:
    """``<home>/pipelines/runs.sqlite3``."""
    return project_dir() / "pipelines" / "runs.sqlite3"


def default_artifact_store() -> str:
    """``<home>/pipelines/artifacts``."""
    return str(project_dir() / "pipelines" / "artifacts")
