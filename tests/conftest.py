"""Shared fixtures. Real public data comes from ``../shared/data`` via RECOPS_DATA_DIR."""

from __future__ import annotations

import os
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
