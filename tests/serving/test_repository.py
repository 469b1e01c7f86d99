"""Model repository: versions, policies, load/unload/switch, failed loads keep serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recops.serving.loaded_model import ModelLoadError
from recops.serving.repository import (
    ModelManager,
    ModelNotFoundError,
    ModelRepository,
    NotReadyError,
    check_name,
    version_key,
)

from .fakes import load_fake, write_fake


@pytest.fixture()
def repo(tmp_path: Path) -> ModelRepository:
    for version, seed in (("1", 1), ("2", 2), ("10", 10)):
        write_fake(tmp_path / "news" / version, seed=seed)
    write_fake(tmp_path / "news" / "11", broken=True)
    return ModelRepository(tmp_path)


def test_versions_sort_naturally(repo: ModelRepository) -> None:
    assert repo.models() == {"news": ["1", "2", "10", "11"]}
    assert repo.latest("news") == "11"
    assert version_key("1.10") > version_key("1.9")
    assert repo.default_name(None) == "news"


def test_names_are_path_safe(repo: ModelRepository) -> None:
    for bad in ("..", "../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="model name"):
            check_name("model name", bad)
    with pytest.raises(ModelNotFoundError, match="no version '3'"):
        repo.path("news", "3")


def test_policies_and_failed_latest(repo: ModelRepository) -> None:
    manager = ModelManager(repo, loader=load_fake)
    with pytest.raises(NotReadyError):
        manager.current()
    bundle = manager.apply_policy(None, "pinned", "2")
    assert (bundle.name, bundle.version) == ("news", "2")
    # "latest" is version 11, which is broken: the error says why, version 2 keeps serving.
    with pytest.raises(ModelLoadError, match="corrupted artifact"):
        manager.apply_policy("news", "latest", None)
    assert manager.current() is bundle
    with pytest.raises(ValueError, match="pinned"):
        manager.apply_policy("news", "pinned", None)


def test_load_switch_unload(repo: ModelRepository) -> None:
    manager = ModelManager(repo, loader=load_fake)
    first = manager.switch("news", "1")
    second = manager.load("news", "2")
    assert manager.current() is first, "load alone must not change what is served"
    assert manager.load("news", "2") is second, "loading twice reuses the bundle"
    assert manager.switch("news", "2") is second and manager.current() is second
    with pytest.raises(ValueError, match="being served"):
        manager.unload("news", "2")
    manager.unload("news", "1")
    assert [b.version for b in manager.loaded()] == ["2"]
    with pytest.raises(ModelNotFoundError, match="not loaded"):
        manager.unload("news", "1")


def test_empty_repository_names_the_problem(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path / "nothing")
    with pytest.raises(ModelNotFoundError, match="0 models"):
        repo.default_name(None)


class _WithoutHistory:
    """A model written before ``encode_history`` joined the serving interface."""

    def __init__(self, model: object) -> None:
        self._model = model

    def __getattr__(self, name: str) -> object:
        if name == "encode_history":
            raise AttributeError(name)
        return getattr(self._model, name)


def test_a_model_missing_part_of_the_interface_fails_to_load(repo: ModelRepository) -> None:
    def load(path: Path) -> object:
        model = load_fake(path)
        return _WithoutHistory(model) if path.name == "2" else model

    manager = ModelManager(repo, loader=load)  # type: ignore[arg-type]
    first = manager.switch("news", "1")
    with pytest.raises(ModelLoadError, match="not servable: it lacks encode_history"):
        manager.switch("news", "2")
    assert manager.current() is first, "the old version keeps serving"


def test_the_server_computes_the_next_prior_before_its_window(client: TestClient) -> None:
    import asyncio

    from recops.serving.prefetch import prefetch_prior

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    bundle = ctx.manager.serving
    boundary = 1_800_000_000 - 1_800_000_000 % ctx.settings.prior_refresh_s
    assert not bundle.prior_cached(boundary)
    asyncio.run(prefetch_prior(ctx, boundary - 2))
    assert bundle.prior_cached(boundary - 2) and bundle.prior_cached(boundary)
