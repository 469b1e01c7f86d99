"""Where the MLflow tracking store and model registry are, and the pipeline's ``[registry]``.

With nothing configured, recops uses an embedded MLflow store: a SQLite file under
the project's data folder, ``<home>/mlflow/mlflow.db`` (``$RECOPS_HOME``, else
``./recops-data``), with the runs' and model versions' artifacts in the folder
beside it, ``<home>/mlflow/artifacts``. ``MLFLOW_TRACKING_URI`` (or the config's
``tracking_uri``) points everything at another store instead, a tracking server
(``http://mlflow:5000``) included, unchanged; the registry is the tracking store
unless ``MLFLOW_REGISTRY_URI`` (or ``registry_uri``) says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from recops.pipelines.settings import project_dir

TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
_SQLITE = "sqlite:///"


def sqlite_uri(path: str | Path) -> str:
    """``sqlite:////abs/path``: the SQLAlchemy URI of a local SQLite file (made absolute)."""
    return _SQLITE + str(Path(path).resolve())


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<home>/mlflow/mlflow.db`` (absolute)."""
    return os.environ.get(TRACKING_ENV) or sqlite_uri(project_dir() / "mlflow" / "mlflow.db")


def default_artifact_root(tracking_uri: str) -> str | None:
    """Beside a local SQLite store: ``<its folder>/artifacts``; else the server decides."""
    if not tracking_uri.startswith(_SQLITE):
        return None
    return str(Path(tracking_uri[len(_SQLITE) :]).resolve().parent / "artifacts")


class RegistryConfig(BaseModel):
    """The ``[registry]`` section of the gated training pipeline's config.

    Parameters
    ----------
    tracking_uri:
        MLflow tracking URI (``sqlite:///...``, ``http://...``); default
        :func:`default_tracking_uri`.
    registry_uri:
        MLflow model registry URI; default ``$MLFLOW_REGISTRY_URI``, else the
        tracking URI.
    artifact_root:
        Where a new experiment keeps its artifacts; default
        :func:`default_artifact_root` (a tracking server decides for itself).
    experiment:
        The MLflow experiment the pipeline's runs are tracked in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str | None = Field(default=None, min_length=1)
    registry_uri: str | None = Field(default=None, min_length=1)
    artifact_root: str | None = Field(default=None, min_length=1)
    experiment: str = Field(default="recops-train", min_length=1, max_length=200)
