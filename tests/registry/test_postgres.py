"""The registry on MLflow's PostgreSQL store: versions, aliases, the audit, a rollback.

Each test gets a database of its own (MLflow's migrations own their schema), made
on ``RECOPS_TEST_POSTGRES_URL``'s server and dropped afterwards; the tests skip,
saying why, without it. The URL is given as the event log's is, ``postgresql://``:
the registry opens it with psycopg 3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from recops.registry import Registry
from recops.registry.materialise import materialise_version
from recops.registry.resolver import registry_resolver
from recops.registry.settings import display_uri, sqlalchemy_uri
from tests.serving.backends import postgres_server  # noqa: F401  (fixture)

from .conftest import MODEL, add_version, judge


def test_a_postgresql_url_gets_the_psycopg_driver_and_no_password_is_shown() -> None:
    url = "postgresql://ana:s3cret@db:5432/mlflow"
    assert sqlalchemy_uri(url) == "postgresql+psycopg://ana:s3cret@db:5432/mlflow"
    assert sqlalchemy_uri("postgres://db/mlflow") == "postgresql+psycopg://db/mlflow"
    for unchanged in ("postgresql+psycopg://db/m", "sqlite:////tmp/m.db", "http://mlflow:5000"):
        assert sqlalchemy_uri(unchanged) == unchanged
    assert display_uri(sqlalchemy_uri(url)) == "postgresql+psycopg://ana:***@db:5432/mlflow"
    assert display_uri("sqlite:////tmp/m.db") == "sqlite:////tmp/m.db"


def _with_database(url: str, name: str, password: str | None = None) -> str:
    """The server's ``url`` naming database ``name`` (and ``password``, when given)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))


@pytest.fixture
def mlflow_database(postgres_server: str) -> Iterator[str]:  # noqa: F811
    """``postgresql://.../<a new database>``, dropped after the test (with MLflow's pool)."""
    import psycopg

    name = f"recops_mlflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _with_database(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_registry(mlflow_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("RECOPS_HOME", str(tmp_path / "home"))
    return Registry(mlflow_database, artifact_root=str(tmp_path / "artifacts"))


def test_versions_aliases_and_their_audit_live_in_postgresql(
    pg_registry: Registry,
    mlflow_database: str,
    tmp_path: Path,
    trained_artifact: Path,
    second_artifact: Path,
) -> None:
    registry = pg_registry
    assert registry.tracking_uri.startswith("postgresql+psycopg://")
    models = tmp_path / "models"
    one = add_version(registry, models, trained_artifact, "1", "aa11")
    two = add_version(registry, models, second_artifact, "2", "bb22")
    assert (one.version, two.version) == ("1", "2") and one.new and two.new
    assert registry.find_digest(MODEL, "bb22") == registry.version(MODEL, "2")
    judge(registry, one, passed=True)
    judge(registry, two, passed=True)
    assert registry.gate_result(MODEL, "2").passed  # type: ignore[union-attr]

    registry.promote(MODEL, "1", actor="ana", reason="the first model")
    registry.move_alias(MODEL, "challenger", "2", action="deploy", actor="pipeline",
                        reason="gate passed")  # fmt: skip
    # Another process (a server following the alias) reads what this one wrote.
    reader = Registry(mlflow_database)
    assert reader.champion(MODEL).version == "1"  # type: ignore[union-attr]
    assert reader.challenger(MODEL).version == "2"  # type: ignore[union-attr]
    moved = registry.promote(MODEL, "2", actor="ct", reason="A/B test says ship")
    assert (moved.previous, moved.version) == ("1", "2")
    assert [(v.version, v.aliases) for v in reader.versions(MODEL)] == [
        ("1", ()),
        ("2", ("challenger", "champion")),
    ]
    assert reader.version(MODEL, "1").tags["recops.champion.left_by"] == "ct"

    back = registry.rollback(MODEL, actor="ct", reason="guardrail clicks/requests failed")
    assert (back.version, back.previous, back.action) == ("1", "2", "rollback")
    assert reader.champion(MODEL).version == "1"  # type: ignore[union-attr]
    assert [(m.alias, m.version, m.action, m.actor) for m in reader.audit(MODEL)] == [
        ("champion", "1", "promote", "ana"),
        ("challenger", "2", "deploy", "pipeline"),
        ("champion", "2", "promote", "ct"),
        ("champion", "1", "rollback", "ct"),
    ]

    # The model itself comes back from the artifact root the database points at.
    champion = reader.champion(MODEL)
    assert champion is not None
    folder = materialise_version(reader, champion, tmp_path / "served")
    assert folder == "1" and (tmp_path / "served" / MODEL / "1" / "recops-pipeline.json").is_file()


def test_the_password_stays_out_of_what_the_registry_says(
    postgres_server: str,  # noqa: F811
    mlflow_database: str,
    tmp_path: Path,
) -> None:
    # The test server trusts local connections: any password will do where it has none.
    password = urlsplit(postgres_server).password or "hunter2"
    url = _with_database(mlflow_database, urlsplit(mlflow_database).path[1:], password)
    # Heroku's spelling too, which SQLAlchemy refuses.
    registry = Registry(url.replace("postgresql://", "postgres://"),
                        artifact_root=str(tmp_path / "artifacts"))  # fmt: skip
    assert registry.models() == []
    assert password not in registry.location and password not in repr(registry)
    resolve = registry_resolver(registry, tmp_path / "served", fallback=lambda *a: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(LookupError, match=r"alias 'champion' of model 'news' is not set") as found:
        resolve(MODEL, None, "champion")
    assert password not in str(found.value) and ":***@" in str(found.value)
