"""compose.yaml: valid Compose, and wired so that `docker compose up` can start.

No Docker daemon here: the file is checked against the Compose Specification schema
and against what recops itself accepts (its settings, its environment check, the
training config).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from recops.pipelines.training.config import load_config
from recops.registry.config import GatedTrainingConfig
from recops.serving.config import check_environment, env_name
from recops.serving.settings import ServerSettings

from .conftest import ROOT
from .dockerfile import parse
from .schemas import load_yaml, schema_errors

COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def _image_env() -> dict[str, str]:
    _, stages = parse(ROOT / "Dockerfile")
    return stages[-1].env()


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax volume of a service."""
    mounts = []
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose, "compose-spec") == []
    broken = copy.deepcopy(compose)
    broken["services"]["server"]["healthcheck"] = {"test": 5}
    assert schema_errors(broken, "compose-spec"), "the schema must catch a malformed service"


def test_the_services_of_one_command(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"server", "train", "postgres", "redis", "mlflow"}
    for name in ("postgres", "redis", "mlflow"):
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: pin a version ({image})"
    # Both recops services build the one image.
    assert services["server"]["build"] == services["train"]["build"] == "."
    assert services["server"]["image"] == services["train"]["image"]


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "mlflow"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    # The server's is the image's (HEALTHCHECK on /healthz), not turned off here.
    assert "healthcheck" not in services["server"]
    _, stages = parse(ROOT / "Dockerfile")
    assert stages[-1].all("HEALTHCHECK")


def test_server_starts_after_training_and_the_backends(compose: dict[str, Any]) -> None:
    depends = compose["services"]["server"]["depends_on"]
    assert depends["train"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert compose["services"]["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    train = compose["services"]["train"]
    assert train["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert train["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_named_volumes_declared_and_bind_mounts_present(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for source, _, _ in _mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_only_loopback_ports_are_published(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_server_environment_passes_the_servers_own_check(compose: dict[str, Any]) -> None:
    server = compose["services"]["server"]["environment"]
    # A null value passes the shell's variable through; check its name all the same.
    env = {**_image_env(), **{k: "x" if v is None else str(v) for k, v in server.items()}}
    check_environment(env)


def test_server_runs_on_the_compose_postgres_and_redis(compose: dict[str, Any]) -> None:
    backends = compose["x-backends"]
    assert set(backends) == {"RECOPS_EVENT_LOG_URL", "RECOPS_STATE_URL"}
    postgres = compose["services"]["postgres"]["environment"]
    assert backends["RECOPS_EVENT_LOG_URL"] == (
        f"postgresql://{postgres['POSTGRES_USER']}:${{POSTGRES_PASSWORD:-recops}}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert backends["RECOPS_STATE_URL"] == "redis://redis:6379/0"
    server = compose["services"]["server"]["environment"]
    known = {env_name(field) for field in ServerSettings.model_fields}
    for name, url in backends.items():
        assert name in known, f"{name}: no server setting reads it"
        assert server[name] == url, f"{name} is not in the server's environment"
    ServerSettings(
        event_log_url=backends["RECOPS_EVENT_LOG_URL"], state_url=backends["RECOPS_STATE_URL"]
    )


def test_postgres_and_mlflow_agree_on_the_database(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    uri = next(a for a in compose["services"]["mlflow"]["command"] if "backend-store-uri" in a)
    match = re.search(r"postgresql\+psycopg2://(\w+):[^@]+@postgres:5432/(\w+)$", uri)
    assert match, uri
    user, database = match.groups()
    assert user == postgres["POSTGRES_USER"]
    initdb = "\n".join(p.read_text() for p in (ROOT / "deploy/compose/initdb").glob("*.sql"))
    assert f"CREATE DATABASE {database};" in initdb
    assert database != postgres["POSTGRES_DB"], "MLflow's tables stay out of recops' database"


def test_training_publishes_where_the_server_reads(compose: dict[str, Any]) -> None:
    services = compose["services"]
    command = services["train"]["command"]
    assert command[:3] == ["pipeline", "run", "train"]
    container_config = command[command.index("--config") + 1]
    host_config = next(s for s, t, _ in _mounts(services["train"]) if t == container_config)
    # `recops pipeline run train` reads the gated pipeline's schema.
    config = load_config(ROOT / host_config, GatedTrainingConfig)
    repository = _image_env()["RECOPS_MODEL_REPOSITORY"]
    assert config.publish.repository == repository
    train = {t: (s, m) for s, t, m in _mounts(services["train"])}
    server = {t: (s, m) for s, t, m in _mounts(services["server"])}
    assert train[repository] == ("models", "rw")
    assert server[repository] == ("models", "ro")


def test_stop_grace_covers_the_drain(compose: dict[str, Any]) -> None:
    grace = compose["services"]["server"]["stop_grace_period"]
    match = re.fullmatch(r"(\d+)s", grace)
    assert match, f"stop_grace_period in whole seconds, got {grace}"
    seconds = int(match.group(1))
    drain = ServerSettings().drain_s
    assert seconds >= drain + 10, f"stop_grace_period {grace} < drain_s {drain} + 10 s"
