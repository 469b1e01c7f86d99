"""The Dockerfile: its structure, and its entry command run outside a container.

The image itself cannot be built here (no Docker Hub, no PyTorch index); what the
image would run can: the exact ``ENTRYPOINT`` + ``CMD`` with the image's ``RECOPS_*``
environment, and the exact ``HEALTHCHECK`` command against it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import httpx
import pytest

from recops.serving.config import check_environment
from recops.serving.process import ServerProcess
from recops.serving.settings import ENV_PREFIX, ServerSettings
from tests.serving.conftest import make_repository

from .conftest import ROOT
from .dockerfile import Stage, exec_form, healthcheck, parse

DOCKERFILE = ROOT / "Dockerfile"
READY_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse(DOCKERFILE)
    return {s.name or s.base: s for s in parsed}


def test_two_stages_a_build_then_a_slim_runtime(stages: dict[str, Stage]) -> None:
    args, _ = parse(DOCKERFILE)
    assert list(stages) == ["build", "runtime"]
    assert all(s.base == "${PYTHON_IMAGE}" for s in stages.values())
    assert re.fullmatch(r"python:3\.11-slim-\w+", args["PYTHON_IMAGE"]), args
    runtime = stages["runtime"]
    assert any(a.startswith("--from=build ") for a in runtime.all("COPY")), runtime.all("COPY")
    # The runtime gets the built virtualenv, not the sources.
    assert not any(" src" in a or a.startswith("src") for a in runtime.all("COPY"))


def test_torch_is_the_cpu_wheel_at_the_project_pin(stages: dict[str, Stage]) -> None:
    build = stages["build"]
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in build.all("ARG")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    torch_runs = [r for r in build.all("RUN") if "torch" in r]
    assert len(torch_runs) == 1, torch_runs
    assert f'--index-url "${{TORCH_INDEX_URL}}" {pin}' in torch_runs[0]
    # Installed before recops, so its dependency on torch is already satisfied.
    runs = build.all("RUN")
    assert runs.index(torch_runs[0]) < next(i for i, r in enumerate(runs) if ".whl" in r)


def test_image_has_the_clients_of_the_backends(stages: dict[str, Stage]) -> None:
    installs = " ".join(stages["build"].all("RUN"))
    # recops imports them only when event_log_url / state_url are set.
    assert '"psycopg[binary]' in installs and '"redis' in installs


def test_runs_as_a_fixed_non_root_user(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    user = runtime.last("USER")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"USER must be numeric uid:gid, got {user}"
    uid, gid = user.split(":")
    setup = " ".join(runtime.all("RUN"))
    assert f"--uid {uid}" in setup and f"--gid {gid}" in setup, setup


def test_volumes_hold_the_model_repository_and_the_event_log(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    env = runtime.env()
    volumes = set(exec_form(runtime.last("VOLUME")))
    event_log_dir = str(PurePosixPath(env["RECOPS_EVENT_LOG_PATH"]).parent)
    assert volumes == {env["RECOPS_MODEL_REPOSITORY"], event_log_dir}
    setup = " ".join(runtime.all("RUN"))
    for folder in volumes:
        # Created and owned by the user before a volume mounts there.
        assert re.search(rf"mkdir -p [^&]*{re.escape(folder)}", setup), folder
        assert re.search(rf"chown [^&]*{re.escape(folder)}", setup), folder


def test_entry_point_is_recops_serve_on_all_interfaces(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    assert exec_form(runtime.last("ENTRYPOINT")) == ["recops"]
    assert exec_form(runtime.last("CMD")) == ["serve"]
    env = runtime.env()
    assert env["RECOPS_HOST"] == "0.0.0.0"
    assert f"{env['RECOPS_PORT']}" in runtime.last("EXPOSE").split()


def test_image_environment_is_what_the_server_reads(stages: dict[str, Stage]) -> None:
    env = stages["runtime"].env()
    check_environment(env)  # an unknown RECOPS_* variable would stop `recops serve`
    recops = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    ServerSettings.model_validate(recops)


def test_healthcheck_probes_healthz_with_python_alone(stages: dict[str, Stage]) -> None:
    options, command = healthcheck(stages["runtime"].last("HEALTHCHECK"))
    assert set(options) >= {"interval", "timeout", "start-period", "retries"}
    assert command[:2] == ["python", "-c"], command
    assert "/healthz" in command[2] and "RECOPS_PORT" in command[2]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out: the last matching pattern wins, and a
    pattern that matches a folder matches everything below it (the rules the file uses)."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(p, glob) for p in prefixes):
            ignored = not negated
    return ignored


def test_build_context_holds_what_the_build_copies_and_nothing_else() -> None:
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    patterns = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for path in ("pyproject.toml", "README.md", "src/recops/__init__.py", "src/recops/py.typed"):
        assert not _ignored(path, patterns), path
    for path in (
        ".git/HEAD",
        "tests/conftest.py",
        "models/news/1/config.json",
        "recops-events.sqlite3",
        "recops-data/pipelines/runs.sqlite3",
        "src/recops.egg-info/PKG-INFO",
        "src/recops/__pycache__/cli.cpython-311.pyc",
        ".env",
    ):
        assert _ignored(path, patterns), path


class _ImageCommand(ServerProcess):
    """ServerProcess's start/readiness/stop around another command and environment."""

    def __init__(self, command: list[str], env: dict[str, str], logs: Path) -> None:
        super().__init__(models=logs, event_log=logs / "unused.sqlite3")
        self._cmd = command
        self._env = env


def _image_environment(stages: dict[str, Stage], tmp_path: Path, port: int) -> dict[str, str]:
    """This process's environment less any RECOPS_*, plus the image's RECOPS_* with its
    folders moved under ``tmp_path`` and the port a free one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    image = {k: v for k, v in stages["runtime"].env().items() if k.startswith(ENV_PREFIX)}
    for key in ("RECOPS_MODEL_REPOSITORY", "RECOPS_EVENT_LOG_PATH"):
        image[key] = str(tmp_path / image[key].lstrip("/"))
    image["RECOPS_PORT"] = str(port)
    # No drain on stop: nothing routes traffic away from a test's server.
    image["RECOPS_DRAIN_S"] = "0"
    return {**env, **image}


def _healthcheck(stages: dict[str, Stage], env: dict[str, str]) -> int:
    _, command = healthcheck(stages["runtime"].last("HEALTHCHECK"))
    # The image's `python` is its virtualenv's; here, this interpreter.
    run = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
    return run.returncode


def test_entry_command_serves_and_passes_its_healthcheck(
    stages: dict[str, Stage], tmp_path: Path, trained_artifact: Path
) -> None:
    runtime = stages["runtime"]
    command = exec_form(runtime.last("ENTRYPOINT")) + exec_form(runtime.last("CMD"))
    executable = shutil.which(command[0])
    assert executable, f"{command[0]} is not on PATH: install the project (pip install -e .)"
    probe = _ImageCommand([executable, *command[1:]], {}, tmp_path)
    env = _image_environment(stages, tmp_path, probe.port)
    probe._env = env
    make_repository(Path(env["RECOPS_MODEL_REPOSITORY"]), trained_artifact)
    Path(env["RECOPS_EVENT_LOG_PATH"]).parent.mkdir(parents=True)

    assert _healthcheck(stages, env) != 0, "the health check must fail while nothing listens"
    with probe.start(READY_TIMEOUT):
        with httpx.Client(base_url=probe.url, timeout=10.0) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
        assert _healthcheck(stages, env) == 0
    # uvicorn re-raises SIGTERM once it has shut down: `docker stop` reports 143.
    assert probe.process is not None
    assert probe.process.returncode in (0, -signal.SIGTERM), probe.log_path.read_text()
    assert _healthcheck(stages, env) != 0, "the health check must fail once the server stopped"
    assert Path(env["RECOPS_EVENT_LOG_PATH"]).is_file(), "the event log goes to its volume"
