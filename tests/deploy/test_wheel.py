"""The wheel the image installs: it builds, and it works outside the source tree.

Built offline (``--no-build-isolation``: setuptools is already installed) from a copy
of the files the Dockerfile copies, so the shared working tree gets no ``build/``;
installed with ``--no-deps`` into a new virtualenv that sees the installed
dependencies (``--system-site-packages``) but not the editable checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc"),
    )
    out = tmp_path_factory.mktemp("wheels")
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        out,
        ".",
        cwd=source,
    )
    (built,) = out.glob("recops-*.whl")
    return built


def test_wheel_holds_the_package_and_its_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = archive.read(metadata).decode()
        entry_points = archive.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "recops/__init__.py" in names and "recops/py.typed" in names
    assert "recops/serving/app.py" in names and "recops/cli/serve.py" in names
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc")]
    assert "Requires-Dist: torch==2.13.0" in requires
    assert "recops = recops.cli:app" in entry_points


def test_wheel_installs_into_a_clean_virtualenv_and_runs(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python, recops = env_dir / "bin" / "python", env_dir / "bin" / "recops"
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel)
    where = _run(python, "-c", "import recops; print(recops.__file__)").strip()
    assert Path(where).is_relative_to(env_dir), f"recops imported from {where}, not the wheel"
    help_text = _run(recops, "--help", cwd=tmp_path)
    for command in ("serve", "train", "pipeline", "experiment"):
        assert command in help_text, command
    _run(recops, "serve", "--help", cwd=tmp_path)
