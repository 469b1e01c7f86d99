"""Slow and half-open clients against a real ``recops serve``: deadlines and the connection cap.

The server runs with 1-second deadlines and a cap of 40 connections, and its open-file
limit is lowered to 200 once it runs (a small machine's), so that a flood of
half-open connections would exhaust it without the cap.
"""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recops.serving.process import ServerProcess

from .conftest import make_repository

LIMITS = {
    "RECOPS_HEADER_TIMEOUT_S": "1",
    "RECOPS_BODY_TIMEOUT_S": "1",
    "RECOPS_MAX_CONNECTIONS": "40",
    "RECOPS_KEEP_ALIVE_S": "1",
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, trained_artifact: Path
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("connections")
    repo = make_repository(tmp / "models", trained_artifact)
    with ServerProcess(repo, tmp / "events.sqlite3", (), LIMITS) as process:
        assert process.process is not None
        resource.prlimit(process.process.pid, resource.RLIMIT_NOFILE, (200, 200))
        yield process


def _connect(server: ServerProcess, first_bytes: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(first_bytes)
    return sock


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and after how long."""
    start = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open {time.monotonic() - start:.1f} s")
    finally:
        sock.close()
    return received, time.monotonic() - start


def test_headers_that_never_finish_are_cut_after_the_header_timeout(server: ServerProcess) -> None:
    sock = _connect(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    received, waited = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408") and waited < 2.5


def test_half_a_body_is_cut_after_the_body_timeout(server: ServerProcess) -> None:
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock = _connect(server, head + b"Content-Length: 100\r\n\r\n" + b'{"events": [')
    received, waited = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408") and waited < 2.5


def test_a_flood_of_half_open_connections_gives_way_to_a_fresh_client(
    server: ServerProcess,
) -> None:
    flood = [_connect(server, b"GET /healthz HTTP/1.1\r\n") for _ in range(300)]
    try:
        with httpx.Client(base_url=server.url, timeout=3.0) as client:
            assert client.get("/healthz").status_code == 200
    finally:
        for sock in flood:
            sock.close()
