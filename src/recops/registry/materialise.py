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

import json
import tempfile
from pathlib import Path

from recops.registry.client import Registry, RegistryError, check_model_name
from recops.registry.versions import RegisteredVersion
from recops.serving.storage import ModelStorage

PROVENANCE = "recops-pipeline.json"


def _digest(provenance: bytes | None) -> str | None:
    """The model digest a ``recops-pipeline.json`` names, if it is there and readable."""
    if provenance is None:
        return None
    try:
        value = json.loads(provenance).get("model_digest")
    except ValueError:
        return None
    return None if value is None else str(value)


def _digest_of(storage: ModelStorage, name: str, version: str) -> str | None:
    return _digest(storage.read_bytes(name, version, PROVENANCE))


def find_in_repository(root: str | Path, name: str, digest: str) -> str | None:
    """The version of ``<root>/<name>/`` holding the model ``digest``, if any."""
    from recops.serving.repository import ModelRepository

    repository = ModelRepository(root)
    for version in repository.models().get(check_model_name(name), []):
        if _digest_of(repository.storage, name, version) == digest:
            return version
    return None


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
        if _digest(provenance.read_bytes() if provenance.is_file() else None) != digest:
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
            if _digest_of(storage, found.name, candidate) == digest:
                return candidate
    raise RegistryError(
        f"could not place model {found.name!r} version {found.version} in "
        f"{storage}/{found.name}: {found.repository_version} and r{found.version} hold "
        "other models"
    )
