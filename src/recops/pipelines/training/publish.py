"""Step ``publish``: the model as a new version of the model repository ``recops serve`` reads.

``<repository>/<name>/<version>/`` receives the model artifact (item vectors
included: the catalog is embedded), ``items.parquet`` (the catalog, for the server's
category and age filters) and ``recops-pipeline.json`` (the model's artifact digest,
so the run that made it is found in the run store). The folder is written under a
hidden name and renamed into place, so a server never sees half a version. Then the
version is loaded the way the server loads it (``ModelManager``: the artifact is
verified and its FAISS index built) and the load is reported.

Publishing is idempotent by content: if a version of ``name`` already holds a model
with the same digest, that version is returned and nothing is written; otherwise
the version is one more than the highest integer version there. The step is never
cached (the repository may have changed since).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from recops.data.schema import Dataset
from recops.models.two_tower import TwoTower
from recops.pipelines.artifacts import Report
from recops.pipelines.component import component
from recops.pipelines.store import MANIFEST, write_artifact

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


def _same_model(root: Path, digest: str) -> str | None:
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        provenance = folder / PROVENANCE
        if (
            folder.is_dir()
            and not folder.name.startswith(".")
            and provenance.is_file()
            and json.loads(provenance.read_text()).get("model_digest") == digest
        ):
            return folder.name
    return None


def _next_version(root: Path) -> int:
    taken = [int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(taken, default=0) + 1


@component(cache=False, code_deps=("recops.serving.repository",))
def publish(model: TwoTower, data: Dataset, repository: str, name: str) -> ModelVersion:
    """Write ``model`` as the next version of ``name`` (see the module docstring)."""
    from recops.serving.repository import CATALOG_FILE, ModelManager, ModelRepository, check_name

    root = Path(repository) / check_name("model name", name)
    with tempfile.TemporaryDirectory(prefix="recops-publish-") as tmp:
        staged = Path(tmp) / "version"
        digest = write_artifact(model, TwoTower, staged, "").digest
        version = _same_model(root, digest)
        new = version is None
        if version is None:
            (staged / MANIFEST).unlink()
            if len(data.items):
                data.items.to_parquet(staged / CATALOG_FILE, index=False)
            provenance = {"model_digest": digest, "published": time.time()}
            (staged / PROVENANCE).write_text(json.dumps(provenance, indent=2))
            root.mkdir(parents=True, exist_ok=True)
            hidden = root / f".tmp-{uuid.uuid4().hex}"
            shutil.copytree(staged, hidden)
            for _ in range(100):
                candidate = str(_next_version(root))
                try:
                    hidden.rename(root / candidate)
                except OSError:  # another publisher took that number first
                    continue
                version = candidate
                break
            else:
                raise OSError(f"could not add a version under {root}")
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
