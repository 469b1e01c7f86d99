"""Step ``publish``: the model as a new version of the model repository ``recops serve`` reads.

``<repository>/<name>/<version>/`` receives the model artifact (item vectors
included: the catalog is embedded), ``items.parquet`` (the catalog, for the server's
category and age filters) and ``recops-pipeline.json`` (the model's artifact digest,
so the run that made it is found in the run store). The repository is a folder or an
fsspec URL; either way a server never sees half a version
(:mod:`recops.serving.storage`: a folder's version is renamed into place, an object
store's is listed once its ``config.json`` lands, uploaded last). Then the
version is loaded the way the server loads it (``ModelManager``: the artifact is
verified and its FAISS index built) and the load is reported.

Publishing is idempotent by content: if a version of ``name`` already holds a model
with the same digest, that version is returned and nothing is written; otherwise
the version is one more than the highest integer version there. The step is never
cached (the repository may have changed since).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from recops.data.schema import Dataset
from recops.models.two_tower import TwoTower
from recops.pipelines.artifacts import Report
from recops.pipelines.component import component
from recops.pipelines.store import MANIFEST, write_artifact
from recops.serving.storage import ModelStorage

PROVENANCE = "recops-pipeline.json"


class ModelVersion(Report):
    """A version in the model repository, as written (or found) by ``publish``."""

    repository: str
    name: str
    version: str
    path: str
    model_digest: str
    new: bool
    items: int
    index: str


def provenance_digest(provenance: bytes | None) -> str | None:
    """The model digest a ``recops-pipeline.json`` names, if it is there and readable."""
    if provenance is None:
        return None
    try:
        value = json.loads(provenance).get("model_digest")
    except ValueError:
        return None
    return None if value is None else str(value)


def model_digest(storage: ModelStorage, name: str, version: str) -> str | None:
    """The model digest ``name``/``version`` of the repository was published with."""
    return provenance_digest(storage.read_bytes(name, version, PROVENANCE))


def version_holding(storage: ModelStorage, name: str, digest: str) -> str | None:
    """The version of ``name`` whose model is ``digest``, if the repository has one."""
    from recops.serving.repository import ModelRepository

    for version in ModelRepository(storage.url).models().get(name, []):
        if model_digest(storage, name, version) == digest:
            return version
    return None


def _next_version(storage: ModelStorage, name: str) -> int:
    taken = [int(v) for v in storage.listing().get(name, []) if v.isdigit()]
    return max(taken, default=0) + 1


@component(
    cache=False,
    code_deps=(
        "recops.serving.repository",
        "recops.serving.loaded_model",
        "recops.serving.storage",
    ),
)
def publish(model: TwoTower, data: Dataset, repository: str, name: str) -> ModelVersion:
    """Write ``model`` as the next version of ``name`` (see the module docstring)."""
    from recops.serving.loaded_model import CATALOG_FILE
    from recops.serving.repository import ModelManager, ModelRepository, check_name

    storage = ModelStorage(repository)
    check_name("model name", name)
    with tempfile.TemporaryDirectory(prefix="recops-publish-") as tmp:
        staged = Path(tmp) / "version"
        digest = write_artifact(model, TwoTower, staged, "").digest
        version = version_holding(storage, name, digest)
        new = version is None
        if version is None:
            (staged / MANIFEST).unlink()
            if len(data.items):
                data.items.to_parquet(staged / CATALOG_FILE, index=False)
            provenance = {"model_digest": digest, "published": time.time()}
            (staged / PROVENANCE).write_text(json.dumps(provenance, indent=2))
            for _ in range(100):
                candidate = str(_next_version(storage, name))
                if storage.add(name, staged, candidate):
                    version = candidate
                    break
                # another publisher took that number first
            else:
                raise OSError(f"could not add a version of {name!r} under {storage}")
    manager = ModelManager(ModelRepository(repository))
    loaded = manager.load(name, version)
    return ModelVersion(
        repository=str(repository),
        name=name,
        version=version,
        path=str(loaded.path),
        model_digest=digest,
        new=new,
        items=loaded.index.n_items,
        index=loaded.index.kind,
    )
