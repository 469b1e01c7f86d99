"""Fixtures: a fresh in-memory artifact store and a run store per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recops.pipelines import ArtifactStore, LocalExecutor, RunStore


@pytest.fixture
def store() -> Iterator[ArtifactStore]:
    """An fsspec ``memory://`` store under a unique root (the memory file system is global)."""
    artifacts = ArtifactStore(f"memory://recops-test-{uuid.uuid4().hex}")
    yield artifacts
    if artifacts.fs.exists(artifacts.root):
        artifacts.fs.rm(artifacts.root, recursive=True)
    artifacts.close()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[RunStore]:
    """A run store in the test's folder."""
    run_store = RunStore(tmp_path / "runs.sqlite3")
    yield run_store
    run_store.close()


@pytest.fixture
def executor(store: ArtifactStore, runs: RunStore) -> LocalExecutor:
    """The local executor on those stores."""
    return LocalExecutor(store, runs)
