"""Shared fixtures. Real public data comes from ``../shared/data`` via RECOPS_DATA_DIR."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory with the public datasets; skips the test when it is absent."""
    path = Path(os.environ.get("RECOPS_DATA_DIR", _DEFAULT_DATA))
    if not path.is_dir():
        pytest.skip(
            f"public datasets not found at {path}: set RECOPS_DATA_DIR to a folder with "
            "ml-100k/, ml-latest-small/, mind-small/ and obd/"
        )
    return path


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance with 2 CPUs for the module; skipped if it cannot start."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # Ray needs shared memory and free ports
        pytest.skip(f"a local Ray instance could not start here: {err}")
    yield
    ray.shutdown()
