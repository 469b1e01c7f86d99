"""Simulated users of the world drive a real recops server over HTTP, and the truth is kept.

Every online claim (an A/B verdict, an off-policy estimate) is about what users would
do; on the world generator (:mod:`recops.data.world`) what they would do is known
exactly, so the claim can be checked. This module plays the world's users against a
running server:

1. **Arrivals.** Requests ``(t_r, u_r)`` of the world's traffic over ``[start, end)``
   (:meth:`~recops.data.world.World.sample_arrivals`: a Poisson process with the
   world's daily cycle, users by activity), in time order, optionally the first
   ``max_requests`` of them.
2. **Request.** ``POST /v1/recommend {"user_id": "u{k}", "k": k, "now": t_r}``; the
   reply's items, ``request_id``, ``experiment``, ``variant`` and ``version`` are kept.
3. **Truth.** For the item ``i_j`` shown at position ``j`` (0 = top) the world's
   click model gives ``p_rj = P(click | u_r, i_j, j, t_r) = examination(j) ·
   attractiveness(u_r, i_j, t_r)`` (:meth:`~recops.data.world.World.click_probability`).
4. **Clicks.** ``click_rj = U_rj < p_rj`` (slots independent given the slate, as in
   the world); each click is posted to ``POST /v1/events`` with the slate's
   ``request_id``, its ``position`` and the timestamp ``t_r + d_rj``,
   ``d_rj ~ U{1..120}`` seconds (capped at the end of the world's period, as the
   world logs them). Impressions (one per shown item, at ``t_r``) are posted too when
   ``post_impressions`` is set, so that the online state and the event log see them.

**What is recorded.** The expected clicks of a served slate, ``Σ_j p_rj``, is exact
given the slate, so per (experiment, variant) the *true* CTR ``Σ_r Σ_j p_rj /
impressions`` (the estimand of the ratio metric ``clicks/impressions`` of the A/B
analysis, and the value an off-policy estimate of that variant targets) stands next
to the observed ``clicks / impressions``, and per unit :func:`unit_truth` gives the
same columns as the server's per-unit table
(:func:`recops.experiments.logs.unit_table`).

**Determinism.** Arrivals, the uniforms ``U`` and the delays ``d`` are drawn up front
from ``seed`` (:func:`plan_traffic`), so a slot's click depends only on the seed, the
request's index and the slate, never on the order replies come back in. A user's
requests are sent one after the other (each after the previous one's events were
acknowledged), as a person browses, so the server's online state and its assignment
log see every user's history in time order. The slates are the server's (a stochastic
policy, or a bandit learning from the log, serves other slates in another run); on the
same slates a run draws the same clicks, whatever the number of connections.

Only loopback targets are allowed unless ``allow_remote`` is set (see
:func:`recops.sim.loadtest.check_loopback`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import urlsplit

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.progress import Progress, TaskID

from recops.data.world.simulate import MAX_CLICK_DELAY_SECONDS
from recops.data.world.truth import World
from recops.progress_bar import transient_bar
from recops.sim.loadtest import HttpConnection, check_loopback
from recops.sim.traffic_truth import ServedSlates, TrafficResult, arms_of

#: The server's largest ``k`` (``recops.serving.schemas.MAX_K``, not imported: the
#: server's module tree costs a second to import and the driver needs none of it).
_MAX_K = 1000


class TrafficConfig(BaseModel):
    """Where to send the world's traffic, how much of it, and how.

    Parameters
    ----------
    url:
        Base URL of the server (``http://127.0.0.1:8000``).
    start, end:
        The simulated period ``[start, end)`` in unix seconds; the world's period when
        None (each bound independently).
    max_requests:
        Keep only the first this many arrivals of the period; all when None.
    k:
        Items asked for per request; the world's ``slate_size`` when None.
    concurrency:
        Connections (and requests in flight) at most.
    post_impressions:
        Also post an ``impression`` event per shown item.
    seed:
        Seed of the arrivals, click draws and click delays.
    timeout_s:
        A request slower than this counts as an error.
    headers:
        Extra HTTP headers on every request (e.g. ``{"Authorization": "Bearer T"}``
        where the server wants a token for replays with ``now``). Never written out
        by :meth:`TrafficResult.to_dict`.
    allow_remote:
        Permit a non-loopback target.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "http://127.0.0.1:8000"
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    max_requests: int | None = Field(default=None, ge=1)
    k: int | None = Field(default=None, ge=1, le=_MAX_K)
    concurrency: int = Field(default=8, ge=1, le=1024)
    post_impressions: bool = False
    seed: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    headers: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    allow_remote: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url must look like http://host:port (got {self.url!r})")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) must not precede start ({self.start})")
        for name, value in self.headers.items():
            # A CR or LF would let a header value smuggle in other headers or requests.
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise ValueError(
                    f"headers: {name!r} must be a header name without ':', spaces or line "
                    "breaks, and its value must have no line breaks"
                )
        return self


@dataclass(frozen=True)
class TrafficPlan:
    """Everything random about a run, drawn from the seed before any request is sent.

    Parameters
    ----------
    time, user:
        ``(R,)`` int64 request times (non-decreasing) and user indices.
    uniforms:
        ``(R, k)`` the ``U_rj`` of the click draws (a click when ``U_rj < p_rj``).
    click_time:
        ``(R, k)`` int64 unix second of each slot's click, were it clicked.
    """

    time: np.ndarray
    user: np.ndarray
    uniforms: np.ndarray
    click_time: np.ndarray

    @property
    def n_requests(self) -> int:
        """Number of requests ``R``."""
        return len(self.time)


def plan_traffic(world: World, config: TrafficConfig) -> TrafficPlan:
    """The arrivals, click uniforms and click times of ``config`` on ``world``.

    Raises
    ------
    ValueError
        When the period has no arrival.
    """
    cfg = world.config
    start = cfg.start_time if config.start is None else config.start
    end = cfg.end_time if config.end is None else config.end
    k = cfg.slate_size if config.k is None else config.k
    rng = np.random.default_rng(config.seed)
    times, users = world.sample_arrivals(rng, start, end)
    if config.max_requests is not None:
        times, users = times[: config.max_requests], users[: config.max_requests]
    if len(times) == 0:
        raise ValueError(
            f"no request arrives in [{start}, {end}): widen the period (start/end) or use a "
            "world with more traffic"
        )
    uniforms = rng.random((len(times), k))
    delay = rng.integers(1, MAX_CLICK_DELAY_SECONDS + 1, size=uniforms.shape)
    # As the world logs them: never past the end of its period, never before the slate.
    click_time = np.maximum(np.minimum(times[:, None] + delay, cfg.end_time - 1), times[:, None])
    return TrafficPlan(time=times, user=users, uniforms=uniforms, click_time=click_time)


class _HeaderWriter:
    """Writes through to a stream, adding fixed header lines to each request head.

    :class:`~recops.sim.loadtest.HttpConnection` writes one whole request (head and
    body) per ``write`` and sends no custom headers; this inserts them after its own.
    """

    def __init__(self, writer: asyncio.StreamWriter, extra: bytes) -> None:
        self._writer = writer
        self._extra = extra

    def write(self, data: bytes) -> None:
        end = data.index(b"\r\n\r\n") + 2
        self._writer.write(data[:end] + self._extra + data[end:])


class _Connection(HttpConnection):
    """A keep-alive connection that sends ``headers`` with every request."""

    def __init__(self, host: str, port: int, headers: Mapping[str, str]) -> None:
        super().__init__(host, port)
        self._extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super()._open()
        if not self._extra:
            return reader, writer
        return reader, cast(asyncio.StreamWriter, _HeaderWriter(writer, self._extra))


class _Run:
    """The mutable state of one run: the plan, what came back, and the counters."""

    def __init__(self, world: World, config: TrafficConfig, plan: TrafficPlan) -> None:
        self.world = world
        self.config = config
        self.plan = plan
        n, k = plan.uniforms.shape
        self.user_ids = world.user_ids(plan.user)
        self.items = np.full((n, k), -1, dtype=np.int64)
        self.item_id = np.full((n, k), None, dtype=object)
        self.probs = np.zeros((n, k), dtype=np.float64)
        self.ok = np.zeros(n, dtype=bool)
        self.replies: list[dict[str, Any] | None] = [None] * n
        self.errors: dict[str, int] = {}
        self.events_posted = 0
        # Each request waits for its user's previous one (see the module docstring).
        self.done = [asyncio.Event() for _ in range(n)]
        self.previous = _previous_of_same_user(plan.user)
        self.next_index = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def item_index(self, ids: list[str]) -> np.ndarray:
        """Indices of the world's item ids ``"i{k}"``, parsed here: this runs per request."""
        n = self.world.n_items
        out = []
        for s in ids:
            digits = s[1:]
            ok = s[:1] == "i" and digits.isascii() and digits.isdigit()
            if not ok or (digits[0] == "0" and digits != "0") or int(digits) >= n:
                break
            out.append(int(digits))
        else:
            return np.asarray(out, dtype=np.int64)
        try:  # the world's own parser names the id it does not have
            return self.world.item_index(ids)
        except KeyError as exc:
            raise ValueError(
                f"the server served an item this world does not have ({exc.args[0]}): serve "
                "a model trained on this world's data"
            ) from None

    async def serve(self, r: int, conn: HttpConnection) -> None:
        """Request ``r``'s slate, draw its clicks from the truth and post them."""
        plan, cfg = self.plan, self.config
        k = plan.uniforms.shape[1]
        t = int(plan.time[r])
        user_id = str(self.user_ids[r])
        body = orjson.dumps({"user_id": user_id, "k": k, "now": t})
        status, payload = await self._call(conn, "/v1/recommend", body)
        if status != 200:
            return
        reply = orjson.loads(payload)
        shown = self.item_index(reply["items"][:k])
        n = len(shown)
        self.items[r, :n] = shown
        self.item_id[r, :n] = reply["items"][:n]
        self.probs[r, :n] = self.world.click_probability(int(plan.user[r]), shown, np.arange(n), t)
        self.replies[r] = reply
        self.ok[r] = True
        clicked = np.flatnonzero(plan.uniforms[r, :n] < self.probs[r, :n]).tolist()
        events = [
            _event(user_id, reply["items"][j], "click", int(plan.click_time[r, j]), j, reply)
            for j in clicked
        ]
        if cfg.post_impressions:
            events = [
                _event(user_id, item, "impression", t, j, reply)
                for j, item in enumerate(reply["items"][:n])
            ] + events
        if events:
            status, _ = await self._call(conn, "/v1/events", orjson.dumps({"events": events}))
            if status == 200:
                self.events_posted += len(events)

    async def _call(self, conn: HttpConnection, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body``; a failure is counted under the endpoint's name and gives 0."""
        label = path.rsplit("/", 1)[-1]
        try:
            status, payload = await asyncio.wait_for(
                conn.request("POST", path, body), self.config.timeout_s
            )
        except TimeoutError:
            await conn.close()
            self.error(f"{label} timeout")
            return 0, b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            await conn.close()
            self.error(f"{label} {type(exc).__name__}")
            return 0, b""
        if status != 200:
            self.error(f"{label} {status}")
        return status, payload

    async def worker(self, host: str, port: int, progress: Progress, task: TaskID) -> None:
        """Serve the plan's requests in order until none is left, on one connection."""
        conn = _Connection(host, port, self.config.headers)
        try:
            while self.next_index < self.plan.n_requests:
                r = self.next_index
                self.next_index += 1
                before = self.previous[r]
                if before >= 0:
                    await self.done[before].wait()
                try:
                    await self.serve(r, conn)
                finally:
                    self.done[r].set()
                progress.advance(task)
        finally:
            await conn.close()

    def result(self, wall_s: float) -> TrafficResult:
        """Gather what came back into a :class:`TrafficResult`."""
        rows = np.flatnonzero(self.ok)
        replies = [cast(dict[str, Any], self.replies[r]) for r in rows]

        def column(key: str) -> np.ndarray:
            return np.array([reply.get(key) for reply in replies] or [], dtype=object)

        plan = self.plan
        items, probs = self.items[rows], self.probs[rows]
        served = ServedSlates(
            index=rows,
            time=plan.time[rows],
            user=plan.user[rows],
            user_id=self.user_ids[rows],
            request_id=column("request_id"),
            experiment=column("experiment"),
            variant=column("variant"),
            model=column("model"),
            version=column("version"),
            items=items,
            item_id=self.item_id[rows],
            click_probability=probs,
            clicks=(plan.uniforms[rows] < probs) & (items >= 0),
        )
        return TrafficResult(
            config=self.config,
            planned=plan.n_requests,
            served=served,
            arms=arms_of(served),
            errors=self.errors,
            events_posted=self.events_posted,
            wall_s=wall_s,
        )


def _event(
    user_id: str, item_id: str, kind: str, timestamp: int, position: int, reply: dict[str, Any]
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "item_id": item_id,
        "event": kind,
        "timestamp": timestamp,
        "position": position,
        "request_id": reply.get("request_id"),
    }


def _previous_of_same_user(users: np.ndarray) -> np.ndarray:
    """``(R,)`` the index of each request's user's previous request, -1 for a first one."""
    order = np.lexsort((np.arange(len(users)), users))
    previous = np.full(len(users), -1, dtype=np.int64)
    same = users[order[1:]] == users[order[:-1]]
    previous[order[1:][same]] = order[:-1][same]
    return previous


async def run_traffic_async(
    world: World, config: TrafficConfig, *, progress: bool = False
) -> TrafficResult:
    """Run the world's traffic against the server in the current event loop.

    See :func:`run_traffic`.
    """
    if not config.allow_remote:
        check_loopback(config.url)
    parts = urlsplit(config.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    run = _Run(world, config, plan_traffic(world, config))
    n_workers = min(config.concurrency, run.plan.n_requests)
    start = time.perf_counter()
    with transient_bar(enabled=progress) as bar:
        task = bar.add_task("simulated users", total=run.plan.n_requests)
        workers = [
            asyncio.ensure_future(run.worker(host, port, bar, task)) for _ in range(n_workers)
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # The first failure (e.g. an item the world does not have) ends the run.
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
    return run.result(time.perf_counter() - start)


def run_traffic(world: World, config: TrafficConfig, *, progress: bool = False) -> TrafficResult:
    """Drive a recops server with the world's users and keep the truth of what it served.

    Parameters
    ----------
    world:
        The ground truth; the server must serve a model of its items (``"i{k}"``).
    config:
        Target, period, volume, concurrency and seed.
    progress:
        Show a progress bar over the requests.

    Returns
    -------
    TrafficResult
        The served slates with their exact expected clicks, the truth per
        (experiment, variant), the errors and the speed.

    Raises
    ------
    ValueError
        When the period has no request, or the server serves an item the world does
        not have.
    """
    coroutine = run_traffic_async(world, config, progress=progress)
    try:  # uvloop halves the driver's own CPU per request, leaving more to the server
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
