"""Registered versions become repository folders; experiment variants resolve aliases there."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec
import pytest

from recops.cli.experiment import repository_resolver
from recops.experiments.config import ModelRef, parse_experiment
from recops.registry import Registry
from recops.registry.materialise import materialise
from recops.registry.resolver import registry_resolver
from recops.serving.repository import ModelRepository

from .conftest import MODEL, add_version, judge

CONFIG = """
name = "champ-vs-chall"
primary_metric = "clicks/impressions"
control = "control"
[[variants]]
name = "control"
alias = "champion"
[[variants]]
name = "challenger"
alias = "challenger"
"""


def test_a_version_is_found_by_digest_or_downloaded_into_a_repository(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    published = tmp_path / "published"
    add_version(registry, published, trained_artifact, "5", "aa11")
    add_version(registry, published, second_artifact, "6", "bb22")
    assert materialise(registry, MODEL, "1", published) == "5"  # already there: by digest

    served = tmp_path / "served"
    assert materialise(registry, MODEL, "2", served) == "6"  # downloaded as publish named it
    copied = served / MODEL / "6"
    assert (copied / "config.json").read_bytes() == (second_artifact / "config.json").read_bytes()
    assert materialise(registry, MODEL, "2", served) == "6"  # idempotent
    assert not [p for p in (served / MODEL).iterdir() if p.name.startswith(".")]

    # Another model already holds folder 5 there: the registry version gets r<version>.
    shutil.copytree(second_artifact, served / MODEL / "5")
    assert materialise(registry, MODEL, "1", served) == "r1"


def test_a_version_is_downloaded_into_a_repository_on_object_storage(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    add_version(registry, tmp_path / "published", trained_artifact, "5", "aa11")
    add_version(registry, tmp_path / "published", second_artifact, "6", "bb22")
    url = f"memory://recops-served-{uuid.uuid4().hex}"
    assert materialise(registry, MODEL, "2", url) == "6"
    assert materialise(registry, MODEL, "2", url) == "6"  # found by its digest
    repository = ModelRepository(url, cache_dir=tmp_path / "cache")
    assert repository.models() == {MODEL: ["6"]}
    copied = repository.path(MODEL, "6")
    assert (copied / "config.json").read_bytes() == (second_artifact / "config.json").read_bytes()
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(root, recursive=True)


def test_experiment_variants_resolve_registry_aliases(
    registry: Registry, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    published = tmp_path / "published"
    one = add_version(registry, published, trained_artifact, "1", "aa11")
    two = add_version(registry, published, second_artifact, "2", "bb22")
    judge(registry, one, True)
    judge(registry, two, True)
    served = tmp_path / "served"
    resolve = registry_resolver(registry, served, repository_resolver(served))
    with pytest.raises(LookupError, match="alias 'champion' of model 'news' is not set"):
        resolve(MODEL, None, "champion")
    registry.promote(MODEL, "1", reason="first")
    registry.promote(MODEL, "2", alias="challenger", reason="gate passed")
    assert resolve(MODEL, None, "champion") == ModelRef(MODEL, "1")
    assert resolve(None, None, "challenger") == ModelRef(MODEL, "2")  # the only model
    assert resolve(MODEL, "1", None) == ModelRef(MODEL, "1")  # versions: the repository's
    assert resolve(MODEL, None, "latest") == ModelRef(MODEL, "2")
    config = parse_experiment(CONFIG, "toml", resolve=resolve)
    assert [v.alias for v in config.variants] == ["champion", "challenger"]
