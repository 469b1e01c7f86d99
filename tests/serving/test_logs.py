"""JSON logs with a request id per request, the access log, and the admin audit."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recops.serving.app import create_app
from recops.serving.logs import configure_logging
from recops.serving.settings import ServerSettings

from .conftest import ADMIN_TOKEN
from .fakes import load_fake, write_fake

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_LOGGERS = ("recops", "uvicorn", "uvicorn.error", "uvicorn.access", "recops.audit", "recops.access")


@pytest.fixture()
def logged(tmp_path: Path) -> Iterator[tuple[TestClient, io.StringIO]]:
    for version in ("1", "2"):
        write_fake(tmp_path / "models" / "news" / version, seed=int(version))
    settings = ServerSettings(
        model_repository=tmp_path / "models",
        version_policy="pinned",
        pinned_version="1",
        event_log_path=tmp_path / "events.sqlite3",
        admin_token=ADMIN_TOKEN,
        log_format="json",
        access_log=True,
        log_level="info",
        worker_index=1,
    )
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
    assert "no version '9'" in str(audit[1]["error"])
    assert audit[0]["request_id"] != "-"
