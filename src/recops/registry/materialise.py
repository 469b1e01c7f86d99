"""A registered version as a folder of a model repository, so a server can load it.

:func:`materialise` returns the repository version (folder name) that holds the
registered version's model:

1. a folder of ``<repository>/<name>/`` whose ``recops-pipeline.json`` names the same
   model digest (the pipeline's ``publish`` wrote it there, or an earlier call did);
2. otherwise the version's model directory is downloaded from MLflow into a hidden
   folder and renamed into place (a server never sees half a version) as the folder
   name ``publish`` gave it (``recops.repository_version``), or ``r<registry
   version>`` when that name is taken by another model.

Two processes materialising at once (the workers of one server) end with one
folder: the loser of the rename finds the winner's by its digest.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

from recops.registry.client import Registry, RegistryError, check_model_name
from recops.registry.versions import RegisteredVersion

PROVENANCE = "recops-pipeline.json"


def _digest_of(folder: Path) -> str | None:
    provenance = folder / PROVENANCE
    if not provenance.is_file():
        return None
    try:
        value = json.loads(provenance.read_text()).get("model_digest")
    except (OSError, ValueError):
        return None
    return None if value is None else str(value)


def find_in_repository(root: Path, name: str, digest: str) -> str | None:
    """The folder of ``<root>/<name>/`` holding the model ``digest``, if any."""
    from recops.serving.repository import ModelRepository

    for version in ModelRepository(root).models().get(check_model_name(name), []):
        if _digest_of(root / name / version) == digest:
            return version
    return None


def materialise(registry: Registry, name: str, version: str, repository: str | Path) -> str:
    """The repository version holding registered ``name``/``version`` (see the module docstring)."""
    found = registry.version(name, version)
    return materialise_version(registry, found, Path(repository))


def materialise_version(registry: Registry, found: RegisteredVersion, root: Path) -> str:
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
    folder = root / found.name
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".tmp-{uuid.uuid4().hex}"
    try:
        with tempfile.TemporaryDirectory(prefix="recops-download-", dir=folder) as tmp:
            downloaded = registry.download(found.name, found.version, Path(tmp))
            if _digest_of(downloaded) != digest:
                raise RegistryError(
                    f"model {found.name!r} version {found.version}: the downloaded artifact's "
                    f"{PROVENANCE} does not name digest {digest[:12]}"
                )
            shutil.move(str(downloaded), hidden)
        for candidate in (found.repository_version, f"r{found.version}"):
            if candidate is None:
                continue
            try:
                hidden.rename(folder / candidate)
            except OSError:  # taken: by the same model from another process, or by another
                if _digest_of(folder / candidate) == digest:
                    return candidate
                continue
            return candidate
    finally:
        if hidden.exists():
            shutil.rmtree(hidden, ignore_errors=True)
    raise RegistryError(
        f"could not place model {found.name!r} version {found.version} in {folder}: "
        f"{found.repository_version} and r{found.version} hold other models"
    )
