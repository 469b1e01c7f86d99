"""A client that hangs up in the middle of its body is a client error, not a server error."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from recops.serving.app import create_app
from recops.serving.process import free_port
from recops.serving.settings import ServerSettings


@pytest.fixture()
def live_url(settings: ServerSettings) -> Iterator[str]:
    """The app behind a real uvicorn server on a loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _metric_lines(url: str, endpoint: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [
        line
        for line in text.splitlines()
        if line.startswith("recops_requests_total") and f'endpoint="{endpoint}"' in line
    ]


def test_half_a_body_then_close_is_a_client_error(
    live_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"events": [{"user_id": "u1", "item_id": "i1", "event": "click"}]}'
    host, port = live_url.removeprefix("http://").split(":")
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with caplog.at_level(logging.INFO):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(0.2)  # the server is now waiting for the rest
        deadline = time.monotonic() + 10
        while not _metric_lines(live_url, "/v1/events") and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = _metric_lines(live_url, "/v1/events")
    assert lines and all('status="499"' in line for line in lines), lines
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the logs"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("disconnected" in r.getMessage() for r in caplog.records)
    # The server is fine and stored nothing.
    assert httpx.get(f"{live_url}/healthz", timeout=10).status_code == 200
