"""Property-based fuzzing of the OpenAPI spec with schemathesis: no input gives a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from recops.serving.app import create_app
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, trained_artifact
) -> Iterator[schemathesis.BaseSchema]:
    from .conftest import make_repository

    root = tmp_path_factory.mktemp("fuzz")
    settings_ = ServerSettings(
        model_repository=make_repository(root / "models", trained_artifact),
        event_log_path=root / "events.sqlite3",
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings_)
    # The context runs the lifespan (model load, event log); schemathesis then calls
    # the same app object in-process.
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    # With the admin token, so the admin handlers themselves (not only the auth
    # check) are fuzzed; test_app covers the refusals without it.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=[not_a_server_error]
    )
