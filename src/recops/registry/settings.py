"""Where the MLflow tracking store and model registry are, and the pipeline's ``[registry]``.

With nothing configured, recops uses an embedded MLflow store: a SQLite file under
the project's data folder, ``<home>/mlflow/mlflow.db`` (``$RECOPS_HOME``, else
``./recops-data``), with the runs' and model versions' artifacts in the folder
beside it, ``<home>/mlflow/artifacts``. ``MLFLOW_TRACKING_URI`` (or the config's
``tracking_uri``) points everything at another store instead, a tracking server
(``http://mlflow:5000``) included, unchanged; the registry is the tracking store
unless ``MLFLOW_REGISTRY_URI`` (or ``registry_uri``) says otherwise.

**A database store.** Any SQLAlchemy URL is a store MLflow keeps its tables in
(made on first use). A PostgreSQL URL may be written as the event log's is,
``postgresql://user:password@host/db``: :func:`sqlalchemy_uri` makes it
``postgresql+psycopg://`` (psycopg 3, of the ``backends`` extra: SQLAlchemy before
2.1 would look for psycopg2, and no SQLAlchemy takes ``postgres://``). Give MLflow a
database of its own (its migrations own the schema). The artifacts then go to
``<home>/mlflow/artifacts`` unless ``artifact_root`` says where: with several
machines on one store, that must be storage they all reach (``s3://...``, a shared
mount). Messages and run reports name a store by :func:`display_uri`, without its
password.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from recops.pipelines.settings import project_dir

TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
_SQLITE = "sqlite:///"
#: SQLAlchemy's names of the server databases MLflow keeps a store in.
_DATABASES = frozenset({"postgresql", "mysql", "mssql"})
_POSTGRES = ("postgresql://", "postgres://")
_PSYCOPG = "postgresql+psycopg://"


def sqlite_uri(path: str | Path) -> str:
    """``sqlite:////abs/path``: the SQLAlchemy URI of a local SQLite file (made absolute)."""
    return _SQLITE + str(Path(path).resolve())


def sqlalchemy_uri(uri: str) -> str:
    """``uri`` with a driver SQLAlchemy has: ``postgresql://`` and ``postgres://`` become
    ``postgresql+psycopg://`` (psycopg 3); any other URI is returned unchanged."""
    for prefix in _POSTGRES:
        if uri.startswith(prefix):
            return _PSYCOPG + uri[len(prefix) :]
    return uri


def display_uri(uri: str) -> str:
    """``uri`` without the password of its user, for messages and reports."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_database_uri(uri: str) -> bool:
    """Whether ``uri`` is a server database's SQLAlchemy URL (PostgreSQL, MySQL, SQL Server)."""
    return urlsplit(uri).scheme.partition("+")[0] in _DATABASES


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<home>/mlflow/mlflow.db`` (absolute)."""
    return os.environ.get(TRACKING_ENV) or sqlite_uri(project_dir() / "mlflow" / "mlflow.db")


def default_artifact_root(tracking_uri: str) -> str | None:
    """Beside a local SQLite store: ``<its folder>/artifacts``; with a database store:
    ``<home>/mlflow/artifacts`` (absolute: MLflow's own default, ``./mlruns``, would move
    with the working folder); a tracking server decides for itself (None)."""
    if tracking_uri.startswith(_SQLITE):
        return str(Path(tracking_uri[len(_SQLITE) :]).resolve().parent / "artifacts")
    if is_database_uri(sqlalchemy_uri(tracking_uri)):
        return str((project_dir() / "mlflow" / "artifacts").resolve())
    return None


class RegistryConfig(BaseModel):
    """The ``[registry]`` section of the gated training pipeline's config.

    Parameters
    ----------
    tracking_uri:
        MLflow tracking URI (``sqlite:///...``, ``http://...``, a database's
        ``postgresql://...``: the module docstring); default :func:`default_tracking_uri`.
    registry_uri:
        MLflow model registry URI; default ``$MLFLOW_REGISTRY_URI``, else the
        tracking URI.
    artifact_root:
        Where a new experiment keeps its artifacts; default
        :func:`default_artifact_root` (a tracking server decides for itself; with a
        database store shared by several machines, storage they all reach).
    experiment:
        The MLflow experiment the pipeline's runs are tracked in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str | None = Field(default=None, min_length=1)
    registry_uri: str | None = Field(default=None, min_length=1)
    artifact_root: str | None = Field(default=None, min_length=1)
    experiment: str = Field(default="recops-train", min_length=1, max_length=200)
