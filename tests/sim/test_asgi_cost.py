"""The in-process CPU meter: it calls the apps, charges each its own work, refuses errors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from recops.sim.asgi_cost import asgi_get, measure_cpu


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _app(work_s: float = 0.0, thread_work_s: float = 0.0, status: int = 200) -> Starlette:
    seen: list[str] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append(request.query_params.get("user", ""))
        _busy(work_s)
        if thread_work_s:  # work handed to another thread, as a log's writer does
            threading.Thread(target=_busy, args=(thread_work_s,)).start()
        return PlainTextResponse("ok", status_code=status)

    app = Starlette(routes=[Route("/r", endpoint)])
    app.state.seen = seen
    return app


def test_each_app_is_charged_its_own_work_threads_included() -> None:
    apps = {"cheap": _app(), "main": _app(work_s=0.002), "thread": _app(thread_work_s=0.002)}
    targets = [("/r", b"user=a"), ("/r", b"user=b")]
    cost = asyncio.run(measure_cpu(apps, targets, rounds=3, requests=20, settle_s=0.05))
    assert set(cost) == {"cheap", "main", "thread"}
    assert cost["main"].min_us > cost["cheap"].min_us + 1_500
    assert cost["main"].main_thread_min_us > 1_500
    # The other thread's CPU counts in the process's, not in the calling thread's.
    assert cost["thread"].min_us > cost["cheap"].min_us + 1_500
    assert cost["thread"].main_thread_min_us < 1_000
    assert cost["cheap"].rounds == 3 and cost["cheap"].requests == 20
    assert cost["cheap"].min_us <= cost["cheap"].median_us
    # Targets are requested in turn (after a warm-up of the same ones).
    assert apps["cheap"].state.seen[:4] == ["a", "b", "a", "b"]


def test_an_error_reply_or_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="broken: GET /r\\?user=a answered 503"):
        asyncio.run(measure_cpu({"broken": _app(status=503)}, [("/r", b"user=a")], rounds=1))
    with pytest.raises(ValueError, match="must not be empty"):
        asyncio.run(measure_cpu({}, [("/r", b"")]))
    with pytest.raises(ValueError, match="must be positive"):
        asyncio.run(measure_cpu({"a": _app()}, [("/r", b"")], rounds=0))
    assert asyncio.run(asgi_get(_app(), "/missing")) == 404
