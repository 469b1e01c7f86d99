"""Backends benchmark: the embedded server against PostgreSQL and Redis, measured from outside.

Reports (a rich table, and ``benchmarks/results/backends.json``):

* for each of four servers, one worker each, on the same model and traffic: the
  SQLite event log or PostgreSQL, the online state in-process or in Redis;
  ``POST /v1/recommend`` throughput of known users at concurrency 8, ``POST
  /v1/events`` with one click per request at concurrency 8 (every request waits
  for its commit: the price of durability, shared by group commit) and with 100
  clicks per request at concurrency 4;
* freshness across two server processes sharing PostgreSQL and Redis: a click
  acknowledged by server A, then server B asked until its answer reflects it
  (the click's item gone, the strategy personalised); p50 and max milliseconds.

It needs a PostgreSQL and a Redis server: ``RECOPS_TEST_POSTGRES_URL`` and
``RECOPS_TEST_REDIS_URL`` (or ``--postgres-url``/``--redis-url``). Each run takes a
schema of its own (dropped at the end) and flushes Redis database ``--redis-db``::

    source .ci/backends.sh && backends_start   # throwaway servers, as in CI
    python benchmarks/backends.py [--items 20000] [--duration 5] [--quick]
    backends_stop

The load generator, the servers, PostgreSQL and Redis share this machine's cores:
compare the rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from rich.console import Console
from rich.table import Table

from recops.serving.context import configure_threads
from recops.serving.process import ServerProcess
from recops.sim.loadtest import HttpConnection, LoadTestConfig, Traffic, run_load_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import build_world_and_model  # the serving benchmark's world

RESULTS = Path(__file__).resolve().parent / "results" / "backends.json"
K = 10
#: label -> (event log, online state)
SETUPS = {
    "sqlite+local": ("sqlite", "local"),
    "postgres+local": ("postgres", "local"),
    "sqlite+redis": ("sqlite", "redis"),
    "postgres+redis": ("postgres", "redis"),
}
console = Console(width=120)


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """``url`` with its tables in a new schema, dropped afterwards."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def flushed(url: str, db: int) -> str:
    """The URL of Redis database ``db`` of the server at ``url``, emptied."""
    import redis

    base = url.split("/")
    target = "/".join([*base[:3], str(db)])
    client = redis.Redis.from_url(target)
    client.flushdb()
    client.close()
    return target


def server_env(log: str, state: str, postgres: str, redis_url: str) -> dict[str, str]:
    # One client posts every event: no per-client quota.
    env = {"RECOPS_EVENT_QUOTA_BYTES_PER_S": "0"}
    if log == "postgres":
        env["RECOPS_EVENT_LOG_URL"] = postgres
    if state == "redis":
        env["RECOPS_STATE_URL"] = redis_url
    return env


def throughput(url: str, traffic: Traffic, duration: float) -> dict[str, Any]:
    """Recommend and events throughput of the server at ``url``."""
    runs = {
        "recommend": {"mix": {"recommend": 1.0}, "concurrency": 8},
        "events_1": {"mix": {"events": 1.0}, "concurrency": 8, "events_per_request": 1},
        "events_100": {"mix": {"events": 1.0}, "concurrency": 4, "events_per_request": 100},
    }
    out = {}
    for name, spec in runs.items():
        config = LoadTestConfig(url=url, duration_s=duration, warmup_s=1.0, k=K, **spec)
        total = run_load_test(config, traffic).total
        out[name] = {
            key: total[key]
            for key in ("throughput_rps", "events_per_s", "p50_ms", "p99_ms", "errors")
        }
    return out


def freshness_across(a_url: str, b_url: str, items: np.ndarray, n: int) -> dict[str, float]:
    """Milliseconds from a click acknowledged by A to B's first answer that reflects it."""
    ports = [int(u.rsplit(":", 1)[1]) for u in (a_url, b_url)]

    async def run() -> list[float]:
        a, b = (HttpConnection("127.0.0.1", p) for p in ports)
        rng = np.random.default_rng(0)
        delays = []
        try:
            for i in range(n):
                user, item = f"fresh-{i}", str(items[rng.integers(len(items))])
                ask = json.dumps({"user_id": user, "k": K}).encode()
                await b.request("POST", "/v1/recommend", ask)  # cold start, untimed
                click = {"events": [{"user_id": user, "item_id": item, "event": "click"}]}
                status, _ = await a.request("POST", "/v1/events", json.dumps(click).encode())
                acknowledged = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"POST /v1/events answered {status}")
                while True:
                    status, body = await b.request("POST", "/v1/recommend", ask)
                    reply = json.loads(body)
                    if reply["strategy"] == "personalized" and item not in reply["items"]:
                        delays.append(time.perf_counter() - acknowledged)
                        break
                    if time.perf_counter() - acknowledged > 5:
                        raise RuntimeError(f"server B did not reflect {user}'s click in 5 s")
        finally:
            await a.close()
            await b.close()
        return delays

    ms = np.asarray(asyncio.run(run())) * 1000
    return {
        "clicks": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "max_ms": float(ms.max()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    duration = 2.0 if args.quick else args.duration
    items_n = 5_000 if args.quick else args.items
    with tempfile.TemporaryDirectory(prefix="recops-bench-backends-") as tmp:
        workdir = Path(tmp)
        clicks, items, _ = build_world_and_model(items_n, workdir)
        traffic = Traffic.from_frames(clicks, items)
        repo = workdir / "models"
        results: dict[str, Any] = {"items": items_n, "duration_s": duration, "setups": {}}
        for label, (log, state) in SETUPS.items():
            with fresh_schema(args.postgres_url) as pg:
                env = server_env(log, state, pg, flushed(args.redis_url, args.redis_db))
                with ServerProcess(repo, workdir / f"{label}.sqlite3", env=env) as server:
                    results["setups"][label] = throughput(server.url, traffic, duration)
            console.print(f"{label}: {results['setups'][label]}")
        with fresh_schema(args.postgres_url) as pg:
            env = server_env("postgres", "redis", pg, flushed(args.redis_url, args.redis_db))
            with (
                ServerProcess(repo, workdir / "a.sqlite3", env=env) as a,
                ServerProcess(repo, workdir / "b.sqlite3", env=env) as b,
            ):
                n = 20 if args.quick else 100
                results["freshness_two_servers"] = freshness_across(
                    a.url, b.url, traffic.item_ids, n
                )
        console.print(f"freshness: {results['freshness_two_servers']}")
    return results


def table(results: dict[str, Any]) -> Table:
    out = Table(
        title=f"backends: {results['items']:,} items, {results['duration_s']:g} s per run",
        caption=(
            "freshness, two servers on PostgreSQL + Redis (click on A, ask B): "
            f"p50 {results['freshness_two_servers']['p50_ms']:.2f} ms, "
            f"max {results['freshness_two_servers']['max_ms']:.2f} ms "
            f"({results['freshness_two_servers']['clicks']} clicks)"
        ),
    )
    for column in (
        "log + state",
        "recommend/s",
        "p50 ms",
        "p99 ms",
        "1-event req/s",
        "p50 ms",
        "events/s (100/req)",
        "errors",
    ):
        out.add_column(column, justify="left" if column == "log + state" else "right")
    for label, r in results["setups"].items():
        rec, one, many = r["recommend"], r["events_1"], r["events_100"]
        out.add_row(
            label,
            f"{rec['throughput_rps']:,.0f}",
            f"{rec['p50_ms']:.2f}",
            f"{rec['p99_ms']:.2f}",
            f"{one['throughput_rps']:,.0f}",
            f"{one['p50_ms']:.2f}",
            f"{many['events_per_s']:,.0f}",
            str(rec["errors"] + one["errors"] + many["errors"]),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="catalog size served")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--quick", action="store_true", help="5,000 items, 2 s per run")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("RECOPS_TEST_POSTGRES_URL"), help="a server"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("RECOPS_TEST_REDIS_URL"), help="a server"
    )
    parser.add_argument("--redis-db", type=int, default=5, help="Redis database to use (flushed)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    if not args.postgres_url or not args.redis_url:
        parser.error(
            "needs a PostgreSQL and a Redis server: set RECOPS_TEST_POSTGRES_URL and "
            "RECOPS_TEST_REDIS_URL (source .ci/backends.sh && backends_start), or pass "
            "--postgres-url and --redis-url"
        )
    configure_threads(1)
    start = time.perf_counter()
    results = run(args)
    results["seconds"] = time.perf_counter() - start
    console.print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    console.print(json.dumps(results, indent=2))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
