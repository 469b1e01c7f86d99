"""JSON bodies only: what a browser can send cross-site without a preflight is refused (415).

A web page may POST ``text/plain``, ``application/x-www-form-urlencoded`` and
``multipart/form-data`` bodies to any origin without asking it first (CORS "simple
requests"), and a body with no Content-Type at all (a ``Blob`` without a type). Had the
server parsed those as JSON, any page a user visits could write events in their name.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from .conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EVENTS = {"events": [{"user_id": "victim", "item_id": "i3", "event": "click"}]}
#: Every route that reads a JSON body, with a body it accepts.
JSON_ROUTES = [
    ("/v1/recommend", {"user_id": "u1"}),
    ("/v1/similar", {"item_id": "i3"}),
    ("/v1/search", {"query": "tech"}),
    ("/v1/category", {"category": "tech"}),
    ("/v1/events", EVENTS),
    ("/v1/admin/models/load", {"version": "1"}),
    ("/v1/admin/models/switch", {"version": "1"}),
]
#: What an HTML form or ``fetch`` without a preflight can send (and a missing type).
SIMPLE_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    None,
]


def _count(client: TestClient) -> int:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    return int(ctx.event_log.count())


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
@pytest.mark.parametrize(("path", "body"), JSON_ROUTES)
def test_non_json_bodies_are_refused_with_415(
    client: TestClient, path: str, body: dict, content_type: str | None
) -> None:
    headers = {**AUTH, **({} if content_type is None else {"Content-Type": content_type})}
    reply = client.post(path, content=json.dumps(body).encode(), headers=headers)
    assert reply.status_code == 415, reply.text
    assert "application/json" in reply.json()["detail"], "the reason names what was expected"


def test_a_cross_site_form_cannot_write_events(client: TestClient) -> None:
    # <form enctype="text/plain"> with one field named '{"events": [...], "x": "' and
    # the value '"}' sends exactly this body: valid JSON, without a preflight.
    name = json.dumps(EVENTS)[:-1] + ', "x": "'
    body = f'{name}="}}'.encode()
    assert json.loads(body)["events"] == EVENTS["events"]
    reply = client.post("/v1/events", content=body, headers={"Content-Type": "text/plain"})
    assert reply.status_code == 415
    assert _count(client) == 0, "nothing was stored"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8"],
)
def test_json_with_or_without_a_utf8_charset_is_accepted(
    client: TestClient, content_type: str
) -> None:
    body = json.dumps(EVENTS).encode()
    reply = client.post("/v1/events", content=body, headers={"Content-Type": content_type})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=latin-1", "application/jsonx", "text/json"]
)
def test_other_charsets_and_lookalikes_are_415(client: TestClient, content_type: str) -> None:
    body = json.dumps(EVENTS).encode()
    reply = client.post("/v1/events", content=body, headers={"Content-Type": content_type})
    assert reply.status_code == 415, reply.text


def test_the_415_is_counted_as_a_client_error(client: TestClient) -> None:
    client.post("/v1/events", content=b"{}", headers={"Content-Type": "text/plain"})
    text = client.get("/metrics").text
    assert 'endpoint="/v1/events",model_version="none",status="415"' in text
