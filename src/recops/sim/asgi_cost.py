"""A server's CPU time per request measured in process: the ASGI app called directly.

``wrk`` on another core (:mod:`recops.sim.wrk`) is how an outsider measures a server,
and what the targets are judged by. On a shared machine its throughput moves by ±20%
from one run to the next, which hides differences of a few percent: what one feature
(an exposure log, an experiment) costs. Here each configuration's app is called
directly, without sockets or a client, configurations alternate in short rounds, and
the process's CPU time per request, every thread included (an event log's writer
too), is reported per configuration as its minimum and median over the rounds: the
minimum is the round the machine disturbed least, the median what a round usually
cost. The numbers are the app's own cost; the HTTP server's (uvicorn) is not in them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass(frozen=True)
class CpuCost:
    """CPU microseconds per request of one configuration, over the rounds.

    Attributes
    ----------
    min_us, median_us:
        The process's CPU time per request (all threads) in the least disturbed
        round and in the median round.
    main_thread_min_us:
        The calling thread's share in its least disturbed round (the rest is other
        threads: a log's writer, a thread pool).
    rounds, requests:
        Rounds measured, and requests per round.
    """

    min_us: float
    median_us: float
    main_thread_min_us: float
    rounds: int
    requests: int


async def asgi_get(app: ASGIApp, path: str, query: bytes = b"") -> int:
    """``GET path?query`` through ``app``; the reply's status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"recops")],
        "client": ("127.0.0.1", 50_000),
        "server": ("127.0.0.1", 80),
    }
    status = [0]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = int(message["status"])

    await app(scope, receive, send)
    return status[0]


async def measure_cpu(
    apps: Mapping[str, ASGIApp],
    targets: Sequence[tuple[str, bytes]],
    *,
    rounds: int = 30,
    requests: int = 600,
    settle_s: float = 0.06,
) -> dict[str, CpuCost]:
    """Alternate ``apps`` in ``rounds`` of ``requests`` GETs each, cycling ``targets``.

    Parameters
    ----------
    apps:
        Label → a started app (its lifespan entered by the caller).
    targets:
        ``(path, query string)`` pairs, requested in turn (e.g. one per user).
    rounds, requests:
        How many rounds per app, and requests per round. The order of the apps
        rotates from one round to the next.
    settle_s:
        Pause at the end of each round, inside its measurement, so that work the
        round left to other threads (a log's batched commit) is counted in it.

    Raises
    ------
    ValueError
        On an empty ``apps`` or ``targets``, non-positive ``rounds`` or
        ``requests``, or a reply that is not 200 (the measure would be of an error).
    """
    if not apps or not targets:
        raise ValueError("`apps` and `targets` must not be empty")
    if rounds < 1 or requests < 1:
        raise ValueError(f"`rounds` and `requests` must be positive (got {rounds}, {requests})")
    labels = list(apps)
    for label in labels:  # warm-up: imports, caches, first-time assignments
        for path, query in targets[:requests]:
            await _checked(apps[label], label, path, query)
    total: dict[str, list[float]] = {label: [] for label in labels}
    main: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            app = apps[label]
            cpu, thread = time.process_time(), time.thread_time()
            for i in range(requests):
                path, query = targets[i % len(targets)]
                await _checked(app, label, path, query)
            thread = time.thread_time() - thread
            await asyncio.sleep(settle_s)
            total[label].append((time.process_time() - cpu) / requests * 1e6)
            main[label].append(thread / requests * 1e6)
    return {
        label: CpuCost(
            min_us=min(total[label]),
            median_us=statistics.median(total[label]),
            main_thread_min_us=min(main[label]),
            rounds=rounds,
            requests=requests,
        )
        for label in labels
    }


async def _checked(app: ASGIApp, label: str, path: str, query: bytes) -> None:
    status = await asgi_get(app, path, query)
    if status != 200:
        raise ValueError(f"{label}: GET {path}?{query.decode()} answered {status}, not 200")
