"""JSON logs with a request id per request, the access log, and the admin audit."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.logs import configure_logging
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN
from .fakes import load_fake, write_fake

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_LOGGERS = ("recops", "uvicorn", "uvicorn.error", "uvicorn.access", "recops.audit", "recops.access")


@contextlib.contextmanager
def _serve_logged(tmp_path: Path, **overrides: Any) -> Iterator[tuple[TestClient, io.StringIO]]:
    """A served app whose log lines (JSON, access log on) are written to the stream."""
    for version in ("1", "2"):
        write_fake(tmp_path / "models" / "news" / version, seed=int(version))
    fields: dict[str, Any] = {
        "model_repository": tmp_path / "models",
        "version_policy": "pinned",
        "pinned_version": "1",
        "event_log_path": tmp_path / "events.sqlite3",
        "admin_token": ADMIN_TOKEN,
        "log_format": "json",
        "access_log": True,
        "log_level": "info",
        "worker_index": 1,
    }
    settings = ServerSettings(**{**fields, **overrides})
    saved = {n: (logging.getLogger(n).handlers, logging.getLogger(n).propagate) for n in _LOGGERS}
    levels = {n: logging.getLogger(n).level for n in _LOGGERS}
    handler = configure_logging(settings)
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        with TestClient(create_app(settings, loader=load_fake)) as client:
            yield client, stream
    finally:
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(levels[name])


@pytest.fixture()
def logged(tmp_path: Path) -> Iterator[tuple[TestClient, io.StringIO]]:
    with _serve_logged(tmp_path) as served:
        yield served


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_request_has_an_id_on_its_reply_and_its_log_lines(
    logged: tuple[TestClient, io.StringIO],
) -> None:
    client, stream = logged
    first = client.get("/healthz")
    second = client.get("/healthz")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    kept = client.get("/healthz", headers={"X-Request-ID": "proxy-7f3a"})
    assert kept.headers["x-request-id"] == "proxy-7f3a"
    odd = client.get("/healthz", headers={"X-Request-ID": "two words\\n"})
    assert odd.headers["x-request-id"] != "two words\\n"
    access = [line for line in _lines(stream) if line["logger"] == "recops.access"]
    assert [line["request_id"] for line in access][:3] == [*ids, "proxy-7f3a"]
    assert access[0]["status"] == 200 and access[0]["path"] == "/healthz"
    assert access[0]["worker"] == "1" and access[0]["level"] == "info"


def test_admin_actions_are_logged_with_who_and_what(
    logged: tuple[TestClient, io.StringIO],
) -> None:
    client, stream = logged
    assert (
        client.post("/v1/admin/models/switch", json={"version": "2"}, headers=AUTH).status_code
        == 200
    )
    failed = client.post("/v1/admin/models/switch", json={"version": "9"}, headers=AUTH)
    assert failed.status_code == 404
    audit = [line for line in _lines(stream) if line["logger"] == "recops.audit"]
    assert [(a["action"], a["version"], a["outcome"]) for a in audit] == [
        ("switch", "2", "done"),
        ("switch", "9", "failed"),
    ]
    assert audit[0]["client"] == "testclient" and audit[0]["actor"] == "admin token"
    assert (audit[0]["method"], audit[0]["path"]) == ("POST", "/v1/admin/models/switch")
    assert "no version '9'" in str(audit[1]["error"])
    assert audit[0]["request_id"] != "-"


def _audit(stream: io.StringIO) -> list[dict[str, object]]:
    return [line for line in _lines(stream) if line["logger"] == "recops.audit"]


def test_refused_admin_requests_are_audited_and_counted_without_the_token(
    logged: tuple[TestClient, io.StringIO],
) -> None:
    client, stream = logged
    guess = "not-the-token-s3cret"
    missing = client.post("/v1/admin/models/switch", json={"version": "2"})
    wrong = client.post(
        "/v1/admin/models/switch",
        json={"version": "2"},
        headers={"Authorization": f"Bearer {guess}", "X-Request-ID": "scan-42"},
    )
    basic = client.post("/v1/admin/items", json={"items": []}, headers={"Authorization": "Basic x"})
    assert [r.status_code for r in (missing, wrong, basic)] == [401, 401, 401]
    refused = _audit(stream)
    assert [(a["method"], a["path"], a["status"], a["reason"]) for a in refused] == [
        ("POST", "/v1/admin/models/switch", 401, "missing_token"),
        ("POST", "/v1/admin/models/switch", 401, "wrong_token"),
        ("POST", "/v1/admin/items", 401, "missing_token"),
    ]
    assert {(a["outcome"], a["level"], a["client"]) for a in refused} == {
        ("refused", "warning", "testclient")
    }
    assert refused[0]["request_id"] == missing.headers["x-request-id"]
    assert refused[1]["request_id"] == "scan-42"
    assert guess not in stream.getvalue(), "the presented token must never be logged"
    metrics = client.get("/metrics").text
    assert 'recops_admin_refusals_total{reason="missing_token",status="401"} 2.0' in metrics
    assert 'recops_admin_refusals_total{reason="wrong_token",status="401"} 1.0' in metrics
    # The token still opens the door, and that is audited as an action, not a refusal.
    assert (
        client.post("/v1/admin/models/switch", json={"version": "2"}, headers=AUTH).status_code
        == 200
    )
    assert [a["outcome"] for a in _audit(stream)][3:] == ["done"]


def test_admin_requests_to_a_disabled_admin_api_are_audited(tmp_path: Path) -> None:
    with _serve_logged(tmp_path, admin_token=None) as (client, stream):
        refused = client.post("/v1/admin/models/unload", json={"version": "1"}, headers=AUTH)
        assert refused.status_code == 403
        (line,) = _audit(stream)
        metrics = client.get("/metrics").text
    assert (line["status"], line["reason"], line["path"]) == (
        403,
        "disabled",
        "/v1/admin/models/unload",
    )
    assert ADMIN_TOKEN not in stream.getvalue()
    assert 'recops_admin_refusals_total{reason="disabled",status="403"} 1.0' in metrics


def _exposure_ids(client: TestClient, n: int) -> list[str]:
    """The request ids of the first ``n`` exposures, once they are committed."""
    log = client.app.state.ctx.event_log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while True:
        ids = [x.request_id for _, x in log.read_exposures()]
        if len(ids) >= n or time.monotonic() > deadline:
            return ids
        time.sleep(0.02)


def test_a_recommendation_has_one_id_in_its_header_body_exposure_and_log_lines(
    logged: tuple[TestClient, io.StringIO],
) -> None:
    client, stream = logged
    plain = client.get("/v1/recommend", params={"user_id": "u1", "k": 3})
    # A proxy's id is kept for correlation, but a join key must be unique: two
    # requests with the same client id get two exposure ids, made by the server.
    proxied = [
        client.post(
            "/v1/recommend", json={"user_id": "u2", "k": 3}, headers={"X-Request-ID": "proxy-7f3a"}
        )
        for _ in range(2)
    ]
    replies = [plain, *proxied]
    assert [r.status_code for r in replies] == [200, 200, 200]
    ids = [r.json()["request_id"] for r in replies]
    assert [r.headers["x-request-id"] for r in replies] == ids
    assert len(set(ids)) == 3 and "proxy-7f3a" not in ids
    assert _exposure_ids(client, 3) == ids
    access = [line for line in _lines(stream) if line["logger"] == "recops.access"]
    assert [line["request_id"] for line in access] == ids
    assert [line.get("client_request_id") for line in access] == [None, "proxy-7f3a", "proxy-7f3a"]
    # Other routes keep the proxy's id as the request's id, as before.
    assert (
        client.get("/healthz", headers={"X-Request-ID": "proxy-7f3a"}).headers["x-request-id"]
        == "proxy-7f3a"
    )
