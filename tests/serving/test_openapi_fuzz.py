"""Property-based fuzzing of the OpenAPI spec with schemathesis, every check on.

Beyond "no input gives a 5xx": every answer's status, media type, headers and body
are documented, invalid input (by the spec) is refused and valid input accepted,
and a 405 lists the path's methods (``schemathesis run --checks all`` in-process).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings

from recops.serving.app import create_app
from recops.serving.schemas import MAX_TIME
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
        loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
        loaded.hook(_now_near_the_clock)
        yield loaded


def map_case(context: object, case: schemathesis.Case) -> schemathesis.Case:
    """A ``now`` in the schema's range becomes the server's clock.

    A server facing clients refuses a ``now`` further than ``max_clock_skew_s`` from
    its clock (the field's description says so; a static schema cannot): a valid
    request has one near the clock. A ``now`` outside the schema's range, or of
    another type, is left as drawn, so invalid requests stay invalid.
    """
    for container in (case.body, case.query):
        if isinstance(container, dict):
            now = container.get("now")
            if type(now) is int and 0 <= now <= MAX_TIME:
                container["now"] = int(time.time())
            elif isinstance(now, str) and now.isdigit() and int(now) <= MAX_TIME:
                container["now"] = str(int(time.time()))
    return case


_now_near_the_clock = map_case


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_spec_holds(case: schemathesis.Case) -> None:
    # With the admin token, so the admin handlers themselves (not only the auth
    # check) are fuzzed; test_app covers the refusals without it. No `checks`
    # argument: every check schemathesis has (all are enabled by default).
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
