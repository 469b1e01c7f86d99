"""The load generator against a small stub server on 127.0.0.1 (run in a thread)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from recops.sim.loadtest import (
    HttpConnection,
    LoadTestConfig,
    Traffic,
    check_loopback,
    report_table,
    run_load_test,
    stage_means,
)


def _stub_app() -> FastAPI:
    """Answers like the recops server; /v1/search always fails, to count errors.

    Its /metrics says each recommendation spent 100 µs in "ann" and 20 µs in
    "rerank", as a recops server's stage histogram would.
    """
    app = FastAPI()
    app.state.bodies = []

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        n = sum(1 for endpoint, _ in app.state.bodies if endpoint == "recommend")
        lines = ["# TYPE recops_stage_seconds histogram"]
        for stage, seconds in (("ann", 1e-4), ("rerank", 2e-5)):
            lines += [
                f'recops_stage_seconds_bucket{{stage="{stage}",le="+Inf"}} {n}',
                f'recops_stage_seconds_sum{{stage="{stage}"}} {n * seconds}',
                f'recops_stage_seconds_count{{stage="{stage}"}} {n}',
            ]
        return PlainTextResponse("\n".join(lines) + "\n")

    @app.post("/v1/{endpoint}")
    async def endpoint(endpoint: str, request: Request) -> JSONResponse:
        body = await request.json()
        app.state.bodies.append((endpoint, body))
        if endpoint == "search":
            return JSONResponse({"detail": "boom"}, status_code=500)
        return JSONResponse({"items": ["i1"], "scores": [1.0]})

    @app.get("/chunked")
    async def chunked() -> StreamingResponse:
        return StreamingResponse(iter([b"abc", b"defg"]))

    return app


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, FastAPI]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = _stub_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "stub server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def traffic() -> Traffic:
    interactions = pd.DataFrame(
        {"user_id": ["u1", "u2", "u2", "u3"], "item_id": ["a", "a", "b", "a"]}
    )
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["red apples today", "blue sky"]})
    return Traffic.from_frames(interactions, items)


def test_traffic_from_frames(traffic: Traffic) -> None:
    assert sorted(traffic.user_ids) == ["u1", "u2", "u3"]
    assert traffic.item_ids.tolist() == ["a", "b"]
    np.testing.assert_allclose(traffic.item_weights, [0.75, 0.25])
    assert list(traffic.queries) == ["red apples today", "blue sky"]
    with pytest.raises(ValueError, match="at least one user"):
        Traffic(np.array([]), np.array(["a"]))


def test_concurrency_mode_reports_every_endpoint(
    stub: tuple[str, FastAPI], traffic: Traffic, tmp_path: Path
) -> None:
    url, app = stub
    config = LoadTestConfig(
        url=url, concurrency=4, duration_s=1.0, warmup_s=0.2, events_per_request=3
    )
    report = run_load_test(config, traffic)
    assert set(report.endpoints) == {"recommend", "similar", "search", "events", "all"}
    for name, s in report.endpoints.items():
        assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"], name
    search = report.endpoints["search"]
    assert search["errors"] == search["requests"] and search["statuses"] == {
        "500": search["requests"]
    }
    assert report.endpoints["recommend"]["errors"] == 0
    events = report.endpoints["events"]
    assert events["events_per_s"] == pytest.approx(3 * events["throughput_rps"])
    assert report.total["requests"] == sum(
        s["requests"] for n, s in report.endpoints.items() if n != "all"
    )
    sent = [body for endpoint, body in app.state.bodies if endpoint == "recommend"]
    assert {b["user_id"] for b in sent} <= {"u1", "u2", "u3"} and sent[0]["k"] == 10
    saved = json.loads(report.save_json(tmp_path / "out" / "report.json").read_text())
    assert saved["endpoints"]["all"]["requests"] == report.total["requests"]
    table = report_table(report)
    assert table.row_count == 5
    # The server's own stage means over the run, from its /metrics before and after.
    assert report.server_stages_us == pytest.approx({"ann": 100.0, "rerank": 20.0})
    assert saved["server_stages_us"] == pytest.approx({"ann": 100.0, "rerank": 20.0})
    assert table.caption == "server stages, mean µs: ann 100 · rerank 20"


def test_rate_mode_sends_the_scheduled_number(stub: tuple[str, FastAPI], traffic: Traffic) -> None:
    url, _ = stub
    config = LoadTestConfig(
        url=url, mode="rate", rate=200, duration_s=1.0, warmup_s=0.0, mix={"recommend": 1.0}
    )
    report = run_load_test(config, traffic)
    assert set(report.endpoints) == {"recommend", "all"}
    assert 150 <= report.total["requests"] <= 201


def test_connection_errors_are_counted(traffic: Traffic) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    config = LoadTestConfig(
        url=f"http://127.0.0.1:{port}", concurrency=1, duration_s=0.3, warmup_s=0
    )
    report = run_load_test(config, traffic)
    assert report.total["requests"] > 0 and report.total["errors"] == report.total["requests"]
    assert report.server_stages_us is None, "no server, no stage metrics"


def test_chunked_responses_are_read(stub: tuple[str, FastAPI]) -> None:
    url, _ = stub
    port = int(url.rsplit(":", 1)[1])

    async def fetch() -> tuple[int, bytes]:
        conn = HttpConnection("127.0.0.1", port)
        try:
            return await conn.request("GET", "/chunked")
        finally:
            await conn.close()

    assert asyncio.run(fetch()) == (200, b"abcdefg")


def test_only_loopback_targets_and_valid_configs() -> None:
    check_loopback("http://127.0.0.1:80")
    check_loopback("http://localhost:80")
    with pytest.raises(ValueError, match="non-loopback"):
        check_loopback("http://10.1.2.3:80")
    with pytest.raises(ValueError, match="unknown endpoints"):
        LoadTestConfig(mix={"recommend": 1.0, "delete": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        LoadTestConfig(mix={"recommend": 0.0})
    with pytest.raises(ValueError, match="http://host:port"):
        LoadTestConfig(url="ftp://127.0.0.1")


def test_stage_means_need_new_observations() -> None:
    before = {"ann": (1.0, 10.0), "state": (0.5, 10.0)}
    after = {"ann": (1.2, 12.0), "state": (0.5, 10.0), "new": (0.3, 3.0)}
    assert stage_means(before, after) == pytest.approx({"ann": 1e5, "new": 1e5})
    assert stage_means(None, after) == pytest.approx({"ann": 1e5, "state": 5e4, "new": 1e5})
    assert stage_means(before, None) is None
    assert stage_means(after, after) is None
