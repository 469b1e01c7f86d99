"""The model repository on object storage: an fsspec ``memory://`` store beside a folder.

The memory file system stands in for ``s3://`` / ``gs://``: the same fsspec calls,
no rename, no local path. Every test checks the folder and the store alike.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.loaded_model import ModelLoadError
from recops.serving.repository import ModelManager, ModelRepository
from recops.serving.settings import ServerSettings
from recops.serving.storage import COMPLETE_FILE, ModelStorage

from .conftest import ADMIN_TOKEN


@pytest.fixture()
def memory_url() -> Iterator[str]:
    """A unique root on the (process-global) memory file system, removed afterwards."""
    url = f"memory://recops-models-{uuid.uuid4().hex}"
    yield url
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(params=["folder", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, memory_url: str) -> ModelStorage:
    root = str(tmp_path / "models") if request.param == "folder" else memory_url
    return ModelStorage(root, cache_dir=tmp_path / "cache")


def test_a_version_is_added_once_and_listed(storage: ModelStorage, trained_artifact: Path) -> None:
    assert storage.listing() == {}
    assert storage.add("news", trained_artifact, "1")
    assert not storage.add("news", trained_artifact, "1")  # taken: never overwritten
    assert storage.listing() == {"news": ["1"]}
    assert storage.exists("news", "1") and not storage.exists("news", "2")
    assert storage.available()
    manifest = storage.read_bytes("news", "1", COMPLETE_FILE)
    assert manifest == (trained_artifact / COMPLETE_FILE).read_bytes()
    assert storage.read_bytes("news", "1", "no-such-file") is None


def test_the_loaded_folder_holds_the_same_files(
    storage: ModelStorage, trained_artifact: Path
) -> None:
    storage.add("news", trained_artifact, "1")
    local = storage.local_path("news", "1")
    want = {p.relative_to(trained_artifact): p.read_bytes() for p in trained_artifact.rglob("*")}
    got = {p.relative_to(local): p.read_bytes() for p in local.rglob("*")}
    assert {str(k) for k in got} == {str(k) for k in want if (trained_artifact / k).is_file()}
    assert all(got[k] == want[k] for k in got)
    with pytest.raises(FileNotFoundError):
        storage.local_path("news", "2")


def test_a_version_without_its_manifest_is_not_listed(memory_url: str, tmp_path: Path) -> None:
    storage = ModelStorage(memory_url, cache_dir=tmp_path / "cache")
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.pipe(f"{root}/news/1/weights.safetensors", b"half an upload")
    assert storage.listing() == {}
    assert not storage.exists("news", "1")
    with pytest.raises(FileNotFoundError):
        storage.local_path("news", "1")
    # A folder without a manifest is no model: refused instead of uploaded unmarked.
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match=COMPLETE_FILE):
        storage.add("news", staged, "2")


def test_a_download_is_cached_and_refreshed_when_the_version_changes(
    memory_url: str, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    storage = ModelStorage(memory_url, cache_dir=tmp_path / "cache")
    storage.add("news", trained_artifact, "1")
    first = storage.local_path("news", "1")
    assert storage.local_path("news", "1") == first  # downloaded once
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.rm(f"{root}/news/1", recursive=True)
    storage.add("news", second_artifact, "1")  # replaced in place (not recommended)
    second = storage.local_path("news", "1")
    assert second != first
    assert (second / COMPLETE_FILE).read_bytes() == (second_artifact / COMPLETE_FILE).read_bytes()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".tmp-")]


def test_the_manager_serves_the_same_model_from_either_place(
    tmp_path: Path, memory_url: str, trained_artifact: Path
) -> None:
    folder = tmp_path / "models" / "news" / "1"
    shutil.copytree(trained_artifact, folder)
    ModelStorage(memory_url).add("news", trained_artifact, "1")
    local = ModelManager(ModelRepository(tmp_path / "models")).switch("news", "1")
    remote_repo = ModelRepository(memory_url, cache_dir=tmp_path / "cache")
    assert remote_repo.models() == {"news": ["1"]}
    remote = ModelManager(remote_repo).switch("news", "1")
    assert remote.path.is_relative_to(tmp_path / "cache")
    assert remote.item_names == local.item_names
    assert (remote.index.vectors == local.index.vectors).all()


def test_a_corrupted_upload_fails_to_load_and_says_where(
    memory_url: str, tmp_path: Path, trained_artifact: Path
) -> None:
    storage = ModelStorage(memory_url)
    storage.add("news", trained_artifact, "1")
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.pipe(f"{root}/news/1/weights.safetensors", b"not the file the manifest hashed")
    manager = ModelManager(ModelRepository(memory_url, cache_dir=tmp_path / "cache"))
    with pytest.raises(ModelLoadError, match="sha256 mismatch") as err:
        manager.load("news", "1")
    assert memory_url in str(err.value)


def test_the_server_serves_from_object_storage(
    memory_url: str, tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    storage = ModelStorage(memory_url)
    storage.add("news", trained_artifact, "1")
    settings = ServerSettings(
        model_repository=memory_url,
        model_cache=tmp_path / "cache",
        event_log_path=tmp_path / "events.sqlite3",
        admin_token=ADMIN_TOKEN,
        replay=True,
    )
    assert settings.model_repository == memory_url  # a URL is not made a Path
    with TestClient(create_app(settings)) as client:
        reply = client.post("/v1/recommend", json={"user_id": "u0", "k": 5})
        assert reply.status_code == 200, reply.text
        assert reply.json()["version"] == "1"
        storage.add("news", second_artifact, "2")
        assert client.get("/v1/models/news/versions/2/ready").status_code == 503
        assert client.get("/v1/models/news/versions/3/ready").status_code == 404
        switched = client.post(
            "/v1/admin/models/switch",
            json={"name": "news", "version": "2"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert switched.status_code == 200, switched.text
        reply = client.post("/v1/recommend", json={"user_id": "u0", "k": 5})
        assert reply.json()["version"] == "2"


def test_settings_keep_a_url_through_the_workers_json() -> None:
    # `recops serve --workers N` hands its settings to each worker as JSON.
    for given, kind in (("memory://m", str), ("s3://b/m", str), ("models", Path)):
        settings = ServerSettings(model_repository=given)
        again = ServerSettings.model_validate_json(settings.model_dump_json())
        assert isinstance(again.model_repository, kind)
        assert str(again.model_repository) == given
    assert ServerSettings(model_repository=Path("m")).model_repository == Path("m")
