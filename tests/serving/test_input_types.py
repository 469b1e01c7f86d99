"""Strict JSON types: a string, a float or a boolean is not an integer (422 naming the field).

Query strings are text by nature: ``k=10`` is converted, but only decimal integers
become integers and only ``true``/``false`` become booleans.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .conftest import START

NOW = START + 30 * 86400
EVENT = {"user_id": "u", "item_id": "i1", "event": "click"}


def _fields(reply_json: dict) -> set[str]:
    return {str(part) for error in reply_json["detail"] for part in error["loc"]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommend", {"user_id": "u1", "k": "10"}, "k"),
        ("/v1/recommend", {"user_id": "u1", "k": 10.0}, "k"),
        ("/v1/recommend", {"user_id": "u1", "k": True}, "k"),
        ("/v1/recommend", {"user_id": "u1", "exclude_seen": 0}, "exclude_seen"),
        ("/v1/recommend", {"user_id": "u1", "exclude_seen": "true"}, "exclude_seen"),
        ("/v1/recommend", {"user_id": "u1", "now": False}, "now"),
        ("/v1/recommend", {"user_id": "u1", "max_age_s": "60"}, "max_age_s"),
        ("/v1/recommend", {"user_id": 12}, "user_id"),
        ("/v1/recommend", {"user_id": "u1", "history": "i1"}, "history"),
        ("/v1/similar", {"item_id": "i3", "k": 2.5}, "k"),
        ("/v1/search", {"query": "tech", "now": False}, "now"),
        ("/v1/category", {"category": "tech", "k": "3"}, "k"),
        ("/v1/events", {"events": [{**EVENT, "position": False}]}, "position"),
        ("/v1/events", {"events": [{**EVENT, "timestamp": 1.7e9}]}, "timestamp"),
        ("/v1/events", {"events": [{**EVENT, "value": True}]}, "value"),
        ("/v1/events", {"events": [{**EVENT, "value": "1"}]}, "value"),
        ("/v1/events", {"events": [{**EVENT, "propensity": "0.5"}]}, "propensity"),
    ],
)
def test_wrong_json_types_are_422_naming_the_field(
    client: TestClient, path: str, body: dict, field: str
) -> None:
    reply = client.post(path, json=body)
    assert reply.status_code == 422, reply.text
    assert field in _fields(reply.json())


def test_an_integer_is_a_valid_number(client: TestClient) -> None:
    # JSON has one number type: 1 is a fine `value` (a float field).
    reply = client.post("/v1/events", json={"events": [{**EVENT, "value": 1, "position": 0}]})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"user_id": "u1", "k": "true"}, "k"),
        ({"user_id": "u1", "k": "10.0"}, "k"),
        ({"user_id": "u1", "k": "1e1"}, "k"),
        ({"user_id": "u1", "k": " 10"}, "k"),
        ({"user_id": "u1", "k": "1_0"}, "k"),
        ({"user_id": "u1", "exclude_seen": "0"}, "exclude_seen"),
        ({"user_id": "u1", "exclude_seen": "yes"}, "exclude_seen"),
        ({"user_id": "u1", "now": "false"}, "now"),
        ({"user_id": "u1", "now": ""}, "now"),
    ],
)
def test_query_strings_convert_numbers_and_true_false_only(
    client: TestClient, params: dict, field: str
) -> None:
    reply = client.get("/v1/recommend", params=params)
    assert reply.status_code == 422, reply.text
    assert field in _fields(reply.json())


def test_query_strings_keep_converting_numbers_and_booleans(client: TestClient) -> None:
    reply = client.get(
        "/v1/recommend",
        params={"user_id": "u1", "k": "7", "exclude_seen": "false", "now": str(NOW)},
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["items"]) == 7
    negative = client.get("/v1/recommend", params={"user_id": "u1", "k": "-3"})
    assert negative.status_code == 422 and "k" in _fields(negative.json())
