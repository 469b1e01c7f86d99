"""Serving benchmark: the recops server on a 100k-item world catalog, measured from outside.

Reports (rich tables, and ``benchmarks/results/serving.json``):

* **per core, the outsider's way**: ``recops serve`` (one worker) pinned to CPU 0 and
  ``wrk`` (Debian's package) pinned to CPU 1, keep-alive: ``GET /v1/recommend`` of a
  known user at concurrency 1, 8 and 32, ``POST /v1/recommend`` of an anonymous user
  with 5 history items at 8, and the same server's trivial route (``/v1/ceiling``, a
  fixed list of ``k`` items through the same route class and serialisation) at the
  same concurrencies, in rotation. Beside every ratio: the server's CPU µs per
  request and the share of its core it had (a run where the core went elsewhere —
  the hypervisor's steal, another process — is not a measure of the server), and the
  server's own mean time per stage from its ``/metrics``, the rest of its CPU being
  the framework (HTTP, routing, parsing);
* two workers on both cores (wrk then shares CPU 1 with a worker), beside it;
* the in-process cost of each stage, ``POST /v1/events`` throughput (durable,
  batched), freshness (an acknowledged click to a recommendation that reflects it),
  the served recall against the exact full score, and the ANN stage alone at 100k and
  1M items;
* the cost of exposure logging and of experiments (``--sections experiments``): each
  configuration served by wrk as above, and beside it the same apps called in process
  (``recops.sim.asgi_cost``: no sockets, alternated rounds, the minimum and median CPU
  per request), which the machine's run-to-run drift disturbs far less.

Without wrk (or on one core) the per-core section is skipped, saying so.

Usage::

    python benchmarks/serving.py [--items 100000] [--duration 8] [--rounds 4]
                                 [--sections main experiments]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.data.world import WorldConfig, generate_world
from recops.serving.app import create_app
from recops.serving.context import configure_threads
from recops.serving.eventlog import Event, SQLiteEventLog
from recops.serving.index import IndexParams, VectorIndex
from recops.serving.process import ServerProcess
from recops.serving.repository import ModelManager, ModelRepository
from recops.serving.schemas import RecommendRequest
from recops.serving.service import RecommendService
from recops.serving.settings import ServerSettings
from recops.serving.state import UserStateStore
from recops.sim.asgi_cost import measure_cpu
from recops.sim.loadtest import (
    HttpConnection,
    LoadTestConfig,
    StageTotals,
    Traffic,
    run_load_test,
    scrape_stages,
    stage_means,
)
from recops.sim.wrk import WrkResult, run_wrk, wrk_available

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
K = 10
#: Servers of the experiment-cost section: label -> (environment, experiment policies).
#: The policies (control, treatment) of an experiment both serve version 1, so the
#: difference to `no_log` is what assignment, the policy step and logging cost.
EXPERIMENT_MODES: dict[str, tuple[dict[str, str], tuple[dict[str, Any], ...] | None]] = {
    "no_log": ({"RECOPS_LOG_EXPOSURES": "false", "RECOPS_EXPERIMENTS": "false"}, None),
    "exposures": ({}, None),
    "experiment_aa": ({}, ({"kind": "greedy"}, {"kind": "greedy"})),
    "experiment_pl": ({}, ({"kind": "greedy"}, {"kind": "plackett_luce", "temperature": 0.5})),
}
EXPERIMENT_LABELS = {
    "no_log": "no exposure log, no experiment",
    "exposures": "exposures logged, no experiment",
    "experiment_aa": "A/A experiment (greedy, greedy)",
    "experiment_pl": "A/B experiment (greedy, Plackett–Luce head)",
}
# Wide enough for the table even when the output goes to a file.
console = Console(width=120)


def build_world_and_model(n_items: int, workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """A world with ``n_items`` items, and a TwoTower trained on its clicks, saved."""
    import torch

    from recops.models.two_tower import TwoTower

    start = time.perf_counter()
    _, data = generate_world(WorldConfig(n_users=2000, n_items=n_items, days=3, seed=0))
    clicks = data.interactions[data.interactions["event"] == "click"].reset_index(drop=True)
    console.print(
        f"world: {len(data.items):,} items, {len(clicks):,} clicks "
        f"({time.perf_counter() - start:.1f} s)"
    )
    start = time.perf_counter()
    torch.set_num_threads(2)  # training is batch work: use both cores
    # Serving speed does not depend on how well the model is trained: one epoch,
    # no validation window, to keep the benchmark within minutes. Without a window
    # the item-item term's weight would be 0; fixed at what ML-100K's window chose
    # (4), the short-history requests pay for it as a default-trained model's do.
    model = TwoTower(
        dim=64,
        hidden=128,
        epochs=1,
        validation_fraction=0.0,
        refit_full=False,
        item_knn_weight=4.0,
        seed=0,
    ).fit(clicks, data.items)
    torch.set_num_threads(1)
    path = model.save(workdir / "models" / "news" / "1")
    console.print(f"model: {len(model.item_ids_):,} items ({time.perf_counter() - start:.1f} s)")
    return clicks, data.items, path


def _pid(server: ServerProcess) -> int:
    if server.process is None:
        raise RuntimeError(f"server at {server.url} is not running")
    return server.process.pid


#: No per-client event quota: the benchmark is one client posting a server's worth.
NO_QUOTA = {"RECOPS_EVENT_QUOTA_BYTES_PER_S": "0"}
CONCURRENCY = (1, 8, 32)


def _stages(server: ServerProcess) -> StageTotals | None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return asyncio.run(scrape_stages(host, int(port)))


def _summary(runs: list[WrkResult], stages: list[dict[str, float] | None]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "throughput_rps": float(np.median([r.throughput for r in runs])),
        "p50_ms": float(np.median([r.p50_ms for r in runs])),
        "p99_ms": float(np.median([r.p99_ms for r in runs])),
        "server_cpu_us": float(np.median([r.server_cpu_us or 0.0 for r in runs])),
        "server_core_share": float(np.median([r.server_core_share or 0.0 for r in runs])),
        "core_steal": float(np.median([r.core_steal or 0.0 for r in runs])),
        "errors": int(sum(r.errors for r in runs)),
        "requests": int(sum(r.requests for r in runs)),
    }
    seen = [s for s in stages if s]
    if seen:
        out["stages_us"] = {
            name: float(np.median([s[name] for s in seen if name in s])) for name in seen[0]
        }
    return out


def _targets(clicks: pd.DataFrame) -> list[tuple[str, int, list[str], str, list[str] | None]]:
    users = clicks["user_id"].astype(str).unique()[:1000]
    known = [f"/v1/recommend?user_id={u}&k={K}" for u in users]
    rng = np.random.default_rng(0)
    items = clicks["item_id"].astype(str).unique()
    bodies = [
        json.dumps(
            {"anonymous_id": f"visitor-{i}", "history": rng.choice(items, 5).tolist(), "k": K}
        )
        for i in range(1000)
    ]
    ceiling = [f"/v1/ceiling?k={K}"]
    out: list[tuple[str, int, list[str], str, list[str] | None]] = []
    for c in CONCURRENCY:
        out += [("recommend", c, known, "GET", None), ("ceiling", c, ceiling, "GET", None)]
    out.append(("recommend_post_anonymous", 8, ["/v1/recommend"] * len(bodies), "POST", bodies))
    return out


def pinned_runs(
    repo: Path, clicks: pd.DataFrame, workdir: Path, seconds: float, rounds: int
) -> dict[str, Any]:
    """The per-core section: one worker on CPU 0, wrk on CPU 1, targets in rotation."""
    if not wrk_available() or (os.cpu_count() or 1) < 2:
        console.print("per-core section skipped: it needs wrk (apt install wrk) and 2 cores")
        return {}
    targets = _targets(clicks)
    runs: dict[tuple[str, int], list[WrkResult]] = {(t[0], t[1]): [] for t in targets}
    stages: dict[tuple[str, int], list[dict[str, float] | None]] = {k: [] for k in runs}
    log = workdir / "events-pinned.sqlite3"
    with ServerProcess(repo, log, ("--benchmark-routes",), NO_QUOTA, cpus={0}) as server:
        pid = _pid(server)
        for r in range(rounds):
            for label, c, paths, method, bodies in (
                targets[r % len(targets) :] + targets[: r % len(targets)]
            ):
                before = _stages(server)
                result = run_wrk(
                    server.url,
                    paths,
                    connections=c,
                    seconds=seconds / rounds,
                    client_cpu=1,
                    server_pid=pid,
                    server_cpu=0,
                    method=method,
                    bodies=bodies,
                )
                runs[(label, c)].append(result)
                stages[(label, c)].append(stage_means(before, _stages(server)))
    out: dict[str, Any] = {}
    for (label, c), results in runs.items():
        summary = _summary(results, stages[(label, c)] if label != "ceiling" else [])
        out.setdefault(label, {})[str(c)] = summary
        console.print(
            f"{label:>24} c={c:<3} {summary['throughput_rps']:7.0f} req/s  "
            f"p50 {summary['p50_ms']:6.2f} ms  p99 {summary['p99_ms']:6.2f} ms  "
            f"server {summary['server_cpu_us']:4.0f} µs/req, core share "
            f"{summary['server_core_share']:.2f}, steal {summary['core_steal']:.2f}, "
            f"errors {summary['errors']}"
        )
    return out


def two_worker_run(
    repo: Path, clicks: pd.DataFrame, workdir: Path, seconds: float, rounds: int
) -> dict[str, Any]:
    """``--workers 2`` on both cores at concurrency 8; wrk shares CPU 1 with a worker."""
    if not wrk_available():
        return {}
    targets = [t for t in _targets(clicks) if t[1] == 8 and t[3] == "GET"]
    runs: dict[str, list[WrkResult]] = {t[0]: [] for t in targets}
    log = workdir / "events-two.sqlite3"
    args = ("--benchmark-routes", "--workers", "2")
    with ServerProcess(repo, log, args, NO_QUOTA) as server:
        time.sleep(2.0)  # both workers up (readiness needs one)
        for r in range(rounds):
            for label, c, paths, _, _ in targets[r % 2 :] + targets[: r % 2]:
                runs[label].append(
                    run_wrk(
                        server.url,
                        paths,
                        connections=c,
                        seconds=seconds / rounds,
                        client_cpu=1,
                        server_pid=_pid(server),
                    )
                )
    return {label: _summary(results, []) for label, results in runs.items()}


def events_throughput(url: str, traffic: Traffic, duration: float) -> dict[str, Any]:
    """Durable events per second with batched requests (500 events each)."""
    config = LoadTestConfig(
        url=url,
        concurrency=4,
        duration_s=duration,
        warmup_s=0.5,
        mix={"events": 1.0},
        events_per_request=500,
    )
    total = run_load_test(config, traffic).total
    console.print(f"events: {total['events_per_s']:,.0f} events/s, errors {total['errors']}")
    return total


def freshness(url: str, items: np.ndarray, n: int = 50) -> dict[str, float]:
    """Seconds from an acknowledged click to a recommendation that reflects it."""
    port = int(url.rsplit(":", 1)[1])

    async def run() -> list[float]:
        conn = HttpConnection("127.0.0.1", port)
        rng = np.random.default_rng(0)
        delays = []
        try:
            for i in range(n):
                user, item = f"fresh-{i}", str(items[rng.integers(len(items))])
                ask = json.dumps({"user_id": user, "k": K}).encode()
                await conn.request("POST", "/v1/recommend", ask)  # cold start, untimed
                click = {"events": [{"user_id": user, "item_id": item, "event": "click"}]}
                status, _ = await conn.request("POST", "/v1/events", json.dumps(click).encode())
                acknowledged = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"POST /v1/events answered {status}")
                while True:
                    status, body = await conn.request("POST", "/v1/recommend", ask)
                    reply = json.loads(body)
                    if reply["strategy"] == "personalized" and item not in reply["items"]:
                        delays.append(time.perf_counter() - acknowledged)
                        break
                    if time.perf_counter() - acknowledged > 5:
                        raise RuntimeError(f"click of {user} not reflected after 5 s")
        finally:
            await conn.close()
        return delays

    ms = np.asarray(asyncio.run(run())) * 1000
    out = {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }
    console.print(f"freshness: p50 {out['p50_ms']:.2f} ms, max {out['max_ms']:.2f} ms")
    return out


def stage_costs(repo: Path, clicks: pd.DataFrame, workdir: Path) -> dict[str, float]:
    """Median in-process microseconds of each recommend stage and of event logging."""
    manager = ModelManager(ModelRepository(repo))
    bundle = manager.switch("news", "1")
    timings: dict[str, list[float]] = {}

    def observe(stage: str, seconds: float) -> None:
        timings.setdefault(stage, []).append(seconds)

    service = RecommendService(UserStateStore(), observer=observe)
    users = clicks["user_id"].astype(str).unique()
    rng = np.random.default_rng(0)
    for i in range(2000):
        reply = service.recommend(RecommendRequest(user_id=str(users[i % len(users)]), k=K), bundle)
        start = time.perf_counter()
        reply.model_dump_json()
        observe("serialize", time.perf_counter() - start)
    log = SQLiteEventLog(workdir / "stage-events.sqlite3")
    items = bundle.model.item_ids_
    for _ in range(200):
        event = Event("u", str(items[rng.integers(len(items))]), "click", 1.0, 0)
        start = time.perf_counter()
        log.append([event])
        observe("event_log (1 event, fsync)", time.perf_counter() - start)
    batch = [Event("u", str(items[j]), "click", 1.0, 0) for j in range(500)]
    for _ in range(20):
        start = time.perf_counter()
        log.append(batch)
        observe("event_log (per event, 500/commit)", (time.perf_counter() - start) / 500)
    log.close()
    out = {stage: float(np.median(v) * 1e6) for stage, v in timings.items()}
    console.print("stages (median µs): " + ", ".join(f"{k} {v:.0f}" for k, v in out.items()))
    return out


def served_recall(repo: Path, clicks: pd.DataFrame, n_users: int = 300) -> float:
    """Share of the true top-k that the server's pipeline serves (default index).

    The truth is the model's full user→item score, ``score_scale * user @ item +
    item_prior(now)``, computed for every item of the catalog; the served list
    comes from the ANN candidates plus the prior's best items, re-ranked.
    """
    bundle = ModelManager(ModelRepository(repo)).switch("news", "1")
    service = RecommendService(UserStateStore())
    users = clicks["user_id"].astype(str).unique()[:n_users]
    now = int(clicks["timestamp"].max()) + 1
    prior = np.asarray(bundle.model.item_prior(now), dtype=np.float32)
    vectors = bundle.index.vectors
    overlap = []
    for user in users:
        request = RecommendRequest(user_id=str(user), k=K, now=now)
        prepared = service.prepare(bundle, request)
        scores = bundle.model.score_scale * (vectors @ service.encode(prepared)) + prior
        scores[prepared.rows] = -np.inf  # seen items are excluded by default
        want = set(bundle.model.item_ids_[np.argsort(-scores, kind="stable")[:K]])
        overlap.append(len(want & set(service.recommend(request, bundle).items)) / K)
    recall = float(np.mean(overlap))
    console.print(f"served recall@{K} against the exact full score: {recall:.3f}")
    return recall


def _latency_and_recall(
    index: VectorIndex, queries: np.ndarray, truth: np.ndarray, k: int = 100
) -> tuple[float, float]:
    found = []
    start = time.perf_counter()
    for q in queries:
        found.append(index.search(q[None, :], k)[0][0])
    latency = (time.perf_counter() - start) / len(queries)
    recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)])
    return latency * 1000, float(recall)


def user_vectors(model: Any, clicks: pd.DataFrame, n: int = 200) -> np.ndarray:
    """Real queries for the ANN stage: user vectors of ``n`` users from their clicks."""
    from recops.models.base import Queries

    users = clicks["user_id"].astype(str).unique()[:n]
    return np.asarray(model.encode_users(Queries.from_interactions(clicks, list(users))))


def ann_stage(
    vectors: np.ndarray, queries: np.ndarray, kinds: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Build time, memory, single-query top-100 latency and recall@100 of each kind."""
    exact = VectorIndex(vectors, IndexParams(kind="exact"))
    truth = exact.search(queries, 100)[0]
    out = {}
    for kind in kinds:
        index = exact if kind == "exact" else VectorIndex(vectors, IndexParams(kind=kind))  # type: ignore[arg-type]
        latency, recall = _latency_and_recall(index, queries, truth)
        out[kind] = {
            "n_items": len(vectors),
            "build_s": index.build_seconds,
            "memory_mb": index.memory_bytes() / 1e6,
            "latency_ms": latency,
            "recall_at_100": recall,
        }
        console.print(
            f"ANN {len(vectors):>9,} {kind:>5}: build {index.build_seconds:6.1f} s, "
            f"{out[kind]['memory_mb']:7.0f} MB, {latency:6.3f} ms/query, recall@100 {recall:.3f}"
        )
    return out


def million_vectors(base: np.ndarray, n: int) -> np.ndarray:
    """``n`` unit vectors around the trained item vectors (each plus Gaussian noise).

    The model only embeds the items it was trained with; a 1M-item catalog for the
    ANN stage alone keeps their distribution (clusters, norms) without training on 1M.
    """
    rng = np.random.default_rng(2)
    rows = rng.integers(len(base), size=n)
    # Noise of norm ~0.4 against unit rows: new items near existing ones, so the
    # catalog keeps the trained clusters instead of becoming uniform on the sphere.
    out = base[rows] + 0.05 * rng.normal(size=(n, base.shape[1])).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _start_experiment(event_log: Path, policies: tuple[dict[str, Any], ...]) -> None:
    from recops.experiments.config import ExperimentConfig, ModelRef
    from recops.experiments.store import ExperimentStore

    config = ExperimentConfig.model_validate(
        {
            "name": "cost",
            "control": "control",
            "primary_metric": "clicks/impressions",
            "variants": [
                {"name": name, "version": "1", "policy": policy}
                for name, policy in zip(("control", "treatment"), policies, strict=True)
            ],
        }
    )

    def resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
        return ModelRef(model or "news", version or "1")

    with ExperimentStore(event_log) as store:
        store.create(config, resolve)
        store.start("cost", resolve)


def experiment_cost(
    repo: Path, clicks: pd.DataFrame, workdir: Path, seconds: float, rounds: int
) -> dict[str, Any]:
    """/v1/recommend with and without exposure logging and experiments, measured from outside.

    Every server is one worker pinned to CPU 0; wrk runs pinned to CPU 1 with 8
    keep-alive connections, each request naming the next of 1,000 known users.
    Servers are measured in rotation (``rounds`` runs each) and the medians taken:
    a shared machine's speed moves by ±20% from one run to the next, which pairing
    runs did not cancel, and many short rounds in rotation average it out.
    """
    if not wrk_available() or (os.cpu_count() or 1) < 2:
        console.print("experiment cost: skipped (needs wrk and 2 cores)")
        return {}
    users = clicks["user_id"].astype(str).unique()[:1000]
    paths = [f"/v1/recommend?user_id={u}&k={K}" for u in users]
    runs: dict[str, list[WrkResult]] = {label: [] for label in EXPERIMENT_MODES}
    with contextlib.ExitStack() as stack:
        servers = {}
        for label, (env, policies) in EXPERIMENT_MODES.items():
            log = workdir / f"events-cost-{label}.sqlite3"
            if policies is not None:
                _start_experiment(log, policies)
            process = ServerProcess(repo, log, ("--benchmark-routes",), env, cpus={0})
            servers[label] = stack.enter_context(process)
        labels = list(servers)
        targets = [(label, paths) for label in labels] + [("ceiling", [f"/v1/ceiling?k={K}"])]
        runs["ceiling"] = []
        for r in range(rounds):
            for label, target in targets[r % len(targets) :] + targets[: r % len(targets)]:
                server = servers["no_log" if label == "ceiling" else label]
                runs[label].append(
                    run_wrk(
                        server.url,
                        target,
                        connections=8,
                        seconds=seconds / rounds,
                        client_cpu=1,
                        server_pid=_pid(server),
                        server_cpu=0,
                    )
                )
    out: dict[str, Any] = {}
    for label, results in runs.items():
        out[label] = {
            "throughput_rps": float(np.median([x.throughput for x in results])),
            "p50_ms": float(np.median([x.p50_ms for x in results])),
            "p99_ms": float(np.median([x.p99_ms for x in results])),
            "server_cpu_us": float(np.median([x.server_cpu_us or 0.0 for x in results])),
            "server_core_share": float(np.median([x.server_core_share or 0.0 for x in results])),
            "core_steal": float(np.median([x.core_steal or 0.0 for x in results])),
            "errors": int(sum(x.errors for x in results)),
        }
        r = out[label]
        console.print(
            f"{label:>14}: {r['throughput_rps']:7.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
            f"p99 {r['p99_ms']:.2f} ms, server {r['server_cpu_us']:.0f} µs/request, "
            f"core share {r['server_core_share']:.2f}, steal {r['core_steal']:.2f}"
        )
    return out


def in_process_cost(
    repo: Path, clicks: pd.DataFrame, workdir: Path, rounds: int = 30
) -> dict[str, Any]:
    """The experiment-cost configurations' apps called in process, pinned to CPU 0."""
    users = clicks["user_id"].astype(str).unique()[:1000]
    targets = [("/v1/recommend", f"user_id={u}&k={K}".encode()) for u in users]

    async def measure() -> dict[str, Any]:
        async with contextlib.AsyncExitStack() as stack:
            apps = {}
            for label, (env, policies) in EXPERIMENT_MODES.items():
                log = workdir / f"events-in-process-{label}.sqlite3"
                if policies is not None:
                    _start_experiment(log, policies)
                # The servers' environment as settings: RECOPS_<FIELD> names a field.
                fields = {key.removeprefix("RECOPS_").lower(): v for key, v in env.items()}
                settings = ServerSettings(
                    model_repository=repo, event_log_path=log, replay=True, **fields
                )
                app = create_app(settings)
                await stack.enter_async_context(app.router.lifespan_context(app))
                apps[label] = app
            return {
                label: vars(cost)
                for label, cost in (await measure_cpu(apps, targets, rounds=rounds)).items()
            }

    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        out = asyncio.run(measure())
    finally:
        os.sched_setaffinity(0, cpus)
    for label, r in out.items():
        console.print(
            f"{label:>14} in process: min {r['min_us']:.0f} µs/request, median "
            f"{r['median_us']:.0f} (calling thread's min {r['main_thread_min_us']:.0f})"
        )
    return out


def in_process_table(cost: dict[str, Any]) -> Table:
    """The in-process view of the experiment cost: CPU per request, and added to no log."""
    out = Table(
        title="the same configurations in process (the app called directly on CPU 0, "
        f"{next(iter(cost.values()))['rounds']} rounds in rotation)"
    )
    for column in ("server", "min µs/req", "vs no log", "median µs/req", "vs no log "):
        out.add_column(column, justify="left" if column == "server" else "right")
    base = cost["no_log"]
    for label, r in cost.items():
        out.add_row(
            EXPERIMENT_LABELS[label],
            f"{r['min_us']:.0f}",
            f"{r['min_us'] - base['min_us']:+.0f} ({base['min_us'] / r['min_us']:.0%})",
            f"{r['median_us']:.0f}",
            f"{r['median_us'] - base['median_us']:+.0f} ({base['median_us'] / r['median_us']:.0%})",
        )
    return out


def experiment_table(cost: dict[str, Any]) -> Table:
    """The experiment-cost section: each server against the one without log or experiment."""
    out = Table(title="cost of exposure logging and experiments (1 worker on CPU 0, wrk on CPU 1)")
    columns = ("server", "req/s", "vs no log", "p50 / p99 ms", "server µs/req",
               "µs vs no log", "core share")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "server" else "right")
    base = cost["no_log"]
    for label, r in cost.items():
        name = EXPERIMENT_LABELS.get(label, "ceiling route (fixed list)")
        target = " (≥ 90%)" if label == "experiment_aa" else ""
        out.add_row(
            name,
            f"{r['throughput_rps']:,.0f}",
            f"{r['throughput_rps'] / base['throughput_rps']:.0%}{target}",
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}",
            f"{r['server_cpu_us']:,.0f}",
            f"{r['server_cpu_us'] - base['server_cpu_us']:+,.0f}",
            f"{r['server_core_share']:.2f} (steal {r['core_steal']:.2f})",
        )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "k": K}
    with tempfile.TemporaryDirectory(prefix="recops-bench-") as tmp:
        workdir = Path(tmp)
        clicks, items, _ = build_world_and_model(args.items, workdir)
        traffic = Traffic.from_frames(clicks, items)
        repo = workdir / "models"
        if "experiments" in args.sections:
            # Twice the time in three times the rounds: the target is a 10% difference,
            # which the machine's drift would otherwise decide.
            results["experiment_cost"] = experiment_cost(
                repo, clicks, workdir, 2 * args.duration, 3 * args.rounds
            )
            results["experiment_cost_in_process"] = in_process_cost(repo, clicks, workdir)
        if "main" not in args.sections:
            return results
        results["pinned"] = pinned_runs(repo, clicks, workdir, args.duration, args.rounds)
        results["two_workers"] = two_worker_run(repo, clicks, workdir, args.duration, args.rounds)
        log = workdir / "events-load.sqlite3"
        with ServerProcess(repo, log, ("--benchmark-routes",), NO_QUOTA) as server:
            results["events"] = events_throughput(server.url, traffic, args.duration)
            results["freshness"] = freshness(server.url, clicks["item_id"].unique())
        results["stages_us"] = stage_costs(repo, clicks, workdir)
        results["served_recall_at_k"] = served_recall(repo, clicks)
        bundle = ModelManager(ModelRepository(repo)).switch("news", "1")
        vectors = bundle.index.vectors
        queries = user_vectors(bundle.model, clicks)
        results["ann_served"] = ann_stage(vectors, queries, ("exact", "ivf", "hnsw"))
        big = million_vectors(vectors, args.ann_items)
        kinds = ("exact", "ivf", "hnsw") if args.hnsw_large else ("exact", "ivf")
        results["ann_large"] = ann_stage(big, queries, kinds)
    return results


def per_core_table(results: dict[str, Any]) -> Table:
    """Recommend against the ceiling on one core, with the server's share of its core."""
    pinned = results["pinned"]
    out = Table(
        title=f"/v1/recommend per core: 1 worker on CPU 0, wrk on CPU 1 (k={K}, 100k items)"
    )
    for column in ("request", "c", "req/s", "ceiling req/s", "ratio", "p50 / p99 ms",
                   "server µs/req (route / ceiling)", "core share", "errors"):  # fmt: skip
        out.add_column(column, justify="left" if column == "request" else "right")
    for label, name in (("recommend", "GET known user"),
                        ("recommend_post_anonymous", "POST anonymous, 5 items")):  # fmt: skip
        for c, r in pinned.get(label, {}).items():
            ceil = pinned["ceiling"][c]
            target = " (≥ 50%)" if (label, c) == ("recommend", "8") else ""
            out.add_row(
                name,
                c,
                f"{r['throughput_rps']:,.0f}",
                f"{ceil['throughput_rps']:,.0f}",
                f"{r['throughput_rps'] / ceil['throughput_rps']:.0%}{target}",
                f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" + (" (p50 ≤ 3)" if target else ""),
                f"{r['server_cpu_us']:,.0f} / {ceil['server_cpu_us']:,.0f}",
                f"{r['server_core_share']:.2f} / {ceil['server_core_share']:.2f}",
                f"{r['errors'] + ceil['errors']}",
            )
    return out


def stage_table(results: dict[str, Any]) -> Table:
    """Where the server's CPU goes per recommendation (c=8): its stages, then the rest."""
    r = results["pinned"]["recommend"]["8"]
    stages = r.get("stages_us", {})
    out = Table(title="server CPU per GET /v1/recommend at c=8, by stage (from its /metrics)")
    out.add_column("stage")
    out.add_column("µs", justify="right")
    for name, us in stages.items():
        out.add_row(name, f"{us:,.1f}")
    rest = r["server_cpu_us"] - sum(stages.values())
    out.add_row("framework and the rest (HTTP, routing, parsing, metrics, writer thread)",
                f"{rest:,.1f}")  # fmt: skip
    out.add_row("total (the server's CPU time per request)", f"{r['server_cpu_us']:,.1f}")
    return out


def table(results: dict[str, Any]) -> Table:
    out = Table(title=f"recops serving benchmark ({results['machine']['cpus']} CPUs, k={K})")
    out.add_column("measure")
    out.add_column("value", justify="right")
    out.add_column("target", justify="right")
    two = results.get("two_workers") or {}
    if two:
        r, ceil = two["recommend"], two["ceiling"]
        out.add_row(
            "2 workers on both cores (wrk shares CPU 1), c=8: req/s, ratio to ceiling",
            f"{r['throughput_rps']:,.0f}, {r['throughput_rps'] / ceil['throughput_rps']:.0%}",
            "",
        )
    for stage, us in results["stages_us"].items():
        out.add_row(f"in-process stage: {stage}", f"{us:,.1f} µs", "")
    out.add_row(
        "POST /v1/events (500/request, durable)",
        f"{results['events']['events_per_s']:,.0f} events/s",
        "≥ 20,000",
    )
    out.add_row(
        f"served top-{K} vs exact top-{K} of the full score (recall)",
        f"{results['served_recall_at_k']:.3f}",
        "",
    )
    f = results["freshness"]
    out.add_row("freshness p50 / max", f"{f['p50_ms']:.2f} / {f['max_ms']:.2f} ms", "≤ 50 ms")
    for scale in ("ann_served", "ann_large"):
        for kind, r in results[scale].items():
            out.add_row(
                f"ANN {r['n_items']:,} {kind}: build s, MB, ms/q, recall@100",
                f"{r['build_s']:.1f}, {r['memory_mb']:.0f}, {r['latency_ms']:.3f}, "
                f"{r['recall_at_100']:.3f}",
                "",
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="catalog size served")
    parser.add_argument("--ann-items", type=int, default=1_000_000, help="ANN-only catalog size")
    parser.add_argument(
        "--duration", type=float, default=8.0, help="measured seconds per target and concurrency"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per run")
    parser.add_argument(
        "--hnsw-large", action="store_true", help="also build HNSW on the ANN-only catalog (slow)"
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=("main", "experiments"),
        default=["main", "experiments"],
        help="main: routes, stages, events, ANN; experiments: the cost of exposures/experiments",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    # One thread for BLAS/OpenMP/FAISS/torch here too, as in the server: the
    # in-process stage timings must match its configuration.
    configure_threads(1)
    start = time.perf_counter()
    results = run(args)
    results["seconds"] = time.perf_counter() - start
    if results.get("pinned"):
        console.print(per_core_table(results))
        console.print(stage_table(results))
    if "events" in results:
        console.print(table(results))
    if results.get("experiment_cost"):
        console.print(experiment_table(results["experiment_cost"]))
    if results.get("experiment_cost_in_process"):
        console.print(in_process_table(results["experiment_cost_in_process"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    console.print(f"results written to {args.out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
