"""The OpenAPI spec tells the truth: every answer the server gives is documented, and back.

``test_openapi_fuzz.py`` checks it with schemathesis; these are the cases it found, as
plain tests that name what was wrong.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recops.serving.repository import InvalidNameError, check_name
from recops.serving.schemas import MODEL_NAME_PATTERN, ModelRef

from .conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture()
def spec(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, m, op) for path, item in spec["paths"].items() for m, op in item.items()]


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH"])
def test_405_lists_every_method_of_the_path(client: TestClient, method: str) -> None:
    reply = client.request(method, "/v1/recommend")
    assert reply.status_code == 405
    allowed = {m.strip() for m in reply.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed <= {"GET", "HEAD", "POST"}


def test_every_operation_documents_its_errors_with_their_bodies(spec: dict) -> None:
    for path, method, op in _operations(spec):
        responses = op["responses"]
        where = f"{method.upper()} {path}"
        # The guard and the connection protocol answer these on any route.
        assert {"400", "408", "413", "503"} <= set(responses), where
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"], (where, status)  # every error has its body
        assert "application/json" in responses["413"]["content"], where
        body = "requestBody" in op
        assert ("415" in responses) == body, where
        if body or any(p["in"] in {"query", "header"} for p in op.get("parameters", [])):
            schema = responses["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationErrors"}, where
    detail = spec["components"]["schemas"]["ValidationErrors"]["properties"]["detail"]
    assert detail["type"] == "array"
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


@pytest.mark.parametrize(
    "body",
    [
        {"version": "x" * 129},
        {"version": "a..b"},
        {"name": "../news", "version": "1"},
        {"version": ".hidden"},
    ],
)
def test_bad_model_names_are_422_with_a_list_of_errors(client: TestClient, body: dict) -> None:
    reply = client.post("/v1/admin/models/switch", json=body, headers=AUTH)
    assert reply.status_code == 422, reply.text
    (error,) = reply.json()["detail"]
    assert error["loc"][0] == "body" and error["loc"][-1] in {"name", "version"}


def test_the_longest_name_the_schema_allows_is_a_name_the_server_takes(
    client: TestClient, spec: dict
) -> None:
    longest = "9" * 128
    reply = client.post("/v1/admin/models/switch", json={"version": longest}, headers=AUTH)
    assert reply.status_code == 404, reply.text  # a valid name of a version that is absent
    schema = spec["paths"]["/v1/admin/models/switch"]["post"]["requestBody"]["content"]
    version = schema["application/json"]["schema"]["properties"]["version"]
    assert version["maxLength"] == 128 and version["pattern"] == MODEL_NAME_PATTERN


@pytest.mark.parametrize(
    "name",
    [
        "1",
        "news",
        "v1.2",
        "a_b-c",
        "a.",
        "a.-.",
        "A" * 128,
        "A" * 129,
        "a..b",
        ".a",
        "-a",
        "",
        "a/b",
    ],
)
def test_the_schema_pattern_is_the_repository_rule(name: str) -> None:
    try:
        check_name("version", name)
        safe = True
    except InvalidNameError:
        safe = False
    try:
        ModelRef.model_validate({"version": name})
        valid = True
    except ValueError:
        valid = False
    assert valid == safe, name


def test_the_get_form_fits_the_http_servers_request_line(spec: dict) -> None:
    # uvicorn refuses request lines over 64 KiB with a 400 before the app sees them:
    # the GET form's lists are short enough that a schema-valid query always fits,
    # even with every character percent-encoded from 4 UTF-8 bytes.
    parameters = {p["name"]: p for p in spec["paths"]["/v1/recommend"]["get"]["parameters"]}
    worst = len("GET /v1/recommend? HTTP/1.1")
    for name, parameter in parameters.items():
        schema = parameter["schema"]
        branch = next(s for s in schema.get("anyOf", [schema]) if s.get("type") != "null")
        if branch["type"] == "array":
            count, length = branch["maxItems"], branch["items"]["maxLength"]
        elif branch["type"] == "string":
            count, length = 1, branch["maxLength"]
        else:  # a number or a boolean
            count, length = 1, 20
        worst += count * (len(name) + 2 + 12 * length)
    assert worst < 64 * 1024


def test_the_spec_is_openapi_30_whose_integers_have_no_fraction(spec: dict) -> None:
    # In OpenAPI 3.1 (JSON Schema 2020-12) 10.0 is an integer, and the strict API would
    # contradict its own spec; OpenAPI 3.0's integer is a number without a fraction.
    from jsonschema import Draft4Validator
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    assert spec["openapi"] == "3.0.3"
    Draft4Validator(OPENAPI_30).validate(spec)
    now = spec["paths"]["/v1/search"]["post"]["requestBody"]["content"]["application/json"]
    field = now["schema"]["properties"]["now"]
    assert field["type"] == "integer" and field["nullable"] is True
    assert isinstance(field["maximum"], int)
