"""A registered version as a folder of a model repository, so a server can load it.

:func:`materialise` returns the repository version (folder name) that holds the
registered version's model:

1. a folder of ``<repository>/<name>/`` whose ``recops-pipeline.json`` names the same
   model digest (the pipeline's ``publish`` wrote it there, or an earlier call did);
2. otherwise the version's model directory is downloaded from MLflow and added to
   the repository (a folder or object storage, :mod:`recops.serving.storage`: a
   server never sees half a version) as the folder name ``publish`` gave it
   (``recops.repository_version``), or ``r<registry version>`` when that name is
   taken by another model.

Two processes materialising at once (the workers of one server) end with one
folder: the loser finds the winner's by its digest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from recops.pipelines.training.publish import (
    PROVENANCE,
    model_digest,
    provenance_digest,
    version_holding,
)
from recops.registry.client import Registry, RegistryError, check_model_name
from recops.registry.versions import RegisteredVersion
from recops.serving.storage import ModelStorage


def find_in_repository(root: str | Path, name: str, digest: str) -> str | None:
    """The folder of ``<root>/<name>/`` holding the model ``digest``, if any."""
    return version_holding(ModelStorage(root), check_model_name(name), digest)


def materialise(registry: Registry, name: str, version: str, repository: str | Path) -> str:
    """The repository version holding registered ``name``/``version`` (see the module docstring)."""
    found = registry.version(name, version)
    return materialise_version(registry, found, repository)


def materialise_version(registry: Registry, found: RegisteredVersion, root: str | Path) -> str:
    """:func:`materialise` for a version already looked up."""
    digest = found.model_digest
    if digest is None:
        raise RegistryError(
            f"model {found.name!r} version {found.version} has no recops.model_digest tag: "
            "it was not registered by recops"
        )
    here = find_in_repository(root, found.name, digest)
    if here is not None:
        return here
    storage = ModelStorage(root)
    with tempfile.TemporaryDirectory(prefix="recops-download-") as tmp:
        downloaded = registry.download(found.name, found.version, Path(tmp))
        provenance = downloaded / PROVENANCE
        if provenance_digest(provenance.read_bytes() if provenance.is_file() else None) != digest:
            raise RegistryError(
                f"model {found.name!r} version {found.version}: the downloaded artifact's "
                f"{PROVENANCE} does not name digest {digest[:12]}"
            )
        for candidate in (found.repository_version, f"r{found.version}"):
            if candidate is None:
                continue
            if storage.add(found.name, downloaded, candidate):
                return candidate
            # taken: by the same model from another process, or by another model
            if model_digest(storage, found.name, candidate) == digest:
                return candidate
    raise RegistryError(
        f"could not place model {found.name!r} version {found.version} in "
        f"{storage}/{found.name}: {found.repository_version} and r{found.version} hold "
        "other models"
    )
