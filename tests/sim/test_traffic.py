"""The world's users against a real ``recops serve`` process running an A/B experiment.

One tiny world, one tiny TwoTower trained on its clicks (two versions of it: control
greedy, treatment Plackett–Luce), one server for the module: the server's own log is
read back and checked against the driver's record and against the world's truth.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recops.cli.experiment_logs import read_experiment_log
from recops.data.world import World, WorldConfig, generate_world
from recops.experiments.config import ExperimentConfig, ModelRef
from recops.experiments.logs import shown_items, unit_table
from recops.experiments.store import ExperimentStore
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.process import ServerProcess
from recops.sim.traffic import TrafficConfig, plan_traffic, run_traffic, run_traffic_async
from recops.sim.traffic_truth import TrafficResult, unit_truth

EXPERIMENT = "ranker"
WORLD = WorldConfig(n_users=80, n_items=150, days=3, seed=3, requests_per_user_per_day=4.0)
# Traffic of the last day: the model was trained on the whole log, as a deployed one is.
START = WORLD.start_time + 2 * 86_400


def _resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
    return ModelRef(model or "news", version or "1")


@pytest.fixture(scope="module")
def world_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, ServerProcess]]:
    import torch

    from recops.models.two_tower import TwoTower

    tmp = tmp_path_factory.mktemp("traffic")
    world, data = generate_world(WORLD)
    clicks = data.interactions[data.interactions["event"] == "click"]
    torch.set_num_threads(1)
    # Any model of the world's items will do; no validation window keeps the fit instant.
    model = TwoTower(
        dim=16, hidden=32, batch_size=64, uniform_negatives=16, num_threads=1,
        text_buckets=256, seed=0, epochs=2, validation_fraction=0.0, refit_full=False,
    ).fit(clicks, data.items)  # fmt: skip
    model.save(tmp / "models" / "news" / "1")
    shutil.copytree(tmp / "models" / "news" / "1", tmp / "models" / "news" / "2")
    config = ExperimentConfig.model_validate(
        {
            "name": EXPERIMENT,
            "control": "control",
            "primary_metric": "clicks/impressions",
            "variants": [
                {"name": "control", "version": "1"},
                {"name": "pl", "version": "2", "policy": {"kind": "plackett_luce", "pool": 20}},
            ],
        }
    )
    event_log = tmp / "events.sqlite3"
    with ExperimentStore(event_log) as store:
        store.create(config, _resolve)
        store.start(EXPERIMENT, _resolve)
    with ServerProcess(tmp / "models", event_log, ("--version", "1")) as server:
        yield world, server


@pytest.fixture(scope="module")
def run(world_server: tuple[World, ServerProcess]) -> TrafficResult:
    world, server = world_server
    config = TrafficConfig(
        url=server.url, start=START, max_requests=300, concurrency=4, post_impressions=True
    )
    result = run_traffic(world, config)
    # Exposures are committed by the server's writer in batches; wait for the last one.
    log = SQLiteEventLog(server.event_log)
    try:
        deadline = time.monotonic() + 10
        while log.exposure_count() < result.served.n_requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        log.close()
    return result


def _log(server: ServerProcess) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return read_experiment_log(server.event_log, EXPERIMENT)


def test_every_request_is_served_and_logged_with_its_request_id(
    world_server: tuple[World, ServerProcess], run: TrafficResult
) -> None:
    world, server = world_server
    served = run.served
    assert run.errors == {} and run.planned == served.n_requests == 300
    assert {a.variant for a in run.arms} == {"control", "pl"}
    assert all(a.experiment == EXPERIMENT for a in run.arms)
    assert run.arm("pl").versions == ("2",) and run.arm("control").versions == ("1",)
    exposures, responses, _ = _log(server)
    assert len(exposures) == served.n_requests
    logged = exposures.set_index("request_id").loc[list(served.request_id)]
    assert logged["timestamp"].tolist() == served.time.tolist()  # the world's time is `now`
    assert logged["unit"].tolist() == world.user_ids(served.user).tolist()
    assert logged["variant"].tolist() == served.variant.tolist()
    ids = world.item_ids()
    assert [list(x) for x in logged["items"]] == [[ids[i] for i in row] for row in served.items]

    # Every event carries its slate's request id, position and time; clicks join.
    clicks = responses[responses["event"] == "click"]
    impressions = responses[responses["event"] == "impression"]
    assert len(impressions) == served.impressions.sum()
    assert len(clicks) == served.clicks.sum() > 0
    assert run.events_posted == len(impressions) + len(clicks)
    rows = {rid: r for r, rid in enumerate(served.request_id)}
    for rid, item, stamp in zip(
        clicks["request_id"], clicks["item_id"], clicks["timestamp"], strict=True
    ):
        r = rows[rid]
        (position,) = np.flatnonzero(served.items[r] == world.item_index([item])[0])
        assert served.clicks[r, position]
        assert 1 <= stamp - served.time[r] <= 120
    shown = shown_items(exposures, responses)
    assert shown["reward"].sum() == served.clicks.sum()

    # A user's next request waits for the events of the previous one: in the log's
    # order, each user's events answer requests in the world's time order.
    answered = [rows[rid] for rid in responses["request_id"]]
    order = pd.DataFrame({"user": served.user[answered], "time": served.time[answered]})
    assert order.groupby("user")["time"].is_monotonic_increasing.all()


def test_the_truth_is_the_world_click_model_on_what_the_server_logged(
    world_server: tuple[World, ServerProcess], run: TrafficResult
) -> None:
    world, server = world_server
    exposures, responses, assignments = _log(server)
    expected: dict[str, float] = {}
    impressions: dict[str, int] = {}
    for x in exposures.itertuples():
        items = world.item_index(list(x.items))
        p = world.click_probability(
            world.user_index([x.unit])[0], items, np.arange(len(items)), x.timestamp
        )
        expected[x.variant] = expected.get(x.variant, 0.0) + float(p.sum())
        impressions[x.variant] = impressions.get(x.variant, 0) + len(items)
    for variant in ("control", "pl"):
        arm = run.arm(variant, EXPERIMENT)
        assert arm.expected_clicks == pytest.approx(expected[variant], rel=1e-12)
        assert arm.impressions == impressions[variant]
        assert arm.true_ctr == pytest.approx(expected[variant] / impressions[variant], rel=1e-12)
        assert arm.observed_ctr == arm.clicks / arm.impressions

    # The per-unit truth lines up with the table the A/B analysis reads.
    logged = unit_table(shown_items(exposures, responses), assignments, EXPERIMENT)
    truth = unit_truth(run, EXPERIMENT, align_to=logged)
    assert truth["unit_id"].tolist() == logged["unit_id"].tolist()
    for column in ("variant", "requests", "impressions", "clicks"):
        assert truth[column].tolist() == logged[column].tolist(), column
    per_variant = truth.groupby("variant")["expected_clicks"].sum()
    assert per_variant.to_dict() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="variant"):
        flipped = logged.assign(variant=logged["variant"].map({"control": "pl", "pl": "control"}))
        unit_truth(run, EXPERIMENT, align_to=flipped)


def _against_stub(
    world: World,
    config: TrafficConfig,
    slate: Callable[[dict[str, Any]], list[str]],
    ack_delay_s: float = 0.0,
    progress: bool = False,
) -> tuple[list[tuple[bytes, dict[str, Any]]], TrafficResult]:
    """Run against a raw socket stub that answers a recommendation with ``slate(body)``.

    It records each request's head and JSON body, a recommendation when it arrives,
    a batch of events when it acknowledges it (``ack_delay_s`` later).
    """
    seen: list[tuple[bytes, dict[str, Any]]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = json.loads(await reader.readexactly(length))
            if head.startswith(b"POST /v1/events "):
                await asyncio.sleep(ack_delay_s)
                reply = {"accepted": len(body["events"])}
            else:
                items = slate(body)
                reply = {"items": items, "scores": [1.0] * len(items)}
            seen.append((head, body))
            data = json.dumps(reply).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
            await writer.drain()

    async def main() -> TrafficResult:
        stub = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = stub.sockets[0].getsockname()[1]
        async with stub:
            url = f"http://127.0.0.1:{port}"
            return await run_traffic_async(
                world, config.model_copy(update={"url": url}), progress=progress
            )

    return seen, asyncio.run(main())


def _fresh_items(world: World, n: int = 10) -> list[str]:
    return [str(i) for i in world.item_ids(world.available_items(START)[-n:])]


def test_the_same_seed_draws_the_same_traffic_and_the_same_clicks_on_the_same_slates(
    world_server: tuple[World, ServerProcess], run: TrafficResult
) -> None:
    world, _ = world_server
    config = run.config
    plan = plan_traffic(world, config)
    again = plan_traffic(world, config)
    other = plan_traffic(world, config.model_copy(update={"seed": 1}))
    for name in ("time", "user", "uniforms", "click_time"):
        assert np.array_equal(getattr(plan, name), getattr(again, name)), name
    assert not np.array_equal(plan.user, other.user)

    # On the real server: the planned requests in their order, and each slot's click
    # drawn from the seed's uniform against the truth of the slate served.
    s = run.served
    assert np.array_equal(s.index, np.arange(plan.n_requests))
    assert np.array_equal(s.user, plan.user) and np.array_equal(s.time, plan.time)
    assert np.array_equal(s.clicks, (plan.uniforms < s.click_probability) & (s.items >= 0))

    # A server whose slates depend only on the request: the same run, however many
    # connections race, and another one for another seed.
    fresh = _fresh_items(world)

    def slate(body: dict[str, Any]) -> list[str]:
        shift = (int(body["user_id"][1:]) + body["now"] // 600) % len(fresh)
        return (fresh[shift:] + fresh[:shift])[: body["k"]]

    small = config.model_copy(update={"max_requests": 60, "post_impressions": False})
    results = [
        _against_stub(world, small.model_copy(update=change), slate, progress=True)[1]
        for change in ({"concurrency": 1}, {"concurrency": 8}, {"concurrency": 8, "seed": 1})
    ]
    one, many, reseeded = (r.served for r in results)
    for name in ("index", "user", "items", "click_probability", "clicks"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    assert results[0].to_dict()["arms"] == results[1].to_dict()["arms"]
    assert not np.array_equal(one.user, reseeded.user)


def test_result_reports_truth_beside_observation(run: TrafficResult) -> None:
    data: dict[str, Any] = run.to_dict()
    assert "headers" not in data["config"]
    arms = {a["variant"]: a for a in data["arms"]}
    control = run.arm("control")
    assert arms["control"]["true_ctr"] == control.true_ctr
    assert control.true_clicks_per_request == control.expected_clicks / control.requests
    assert data["served"] == 300 and data["requests_per_s"] > 0
    table = run.table()
    assert len(table.columns) == 1 + len(run.arms) and table.row_count == 8
    frame = run.served.to_frame()
    assert frame["expected_clicks"].sum() == pytest.approx(sum(a.expected_clicks for a in run.arms))
    with pytest.raises(KeyError, match="the run met"):
        run.arm("treatment")


def test_a_user_asks_again_only_once_the_server_has_the_previous_clicks(
    world_server: tuple[World, ServerProcess],
) -> None:
    world, _ = world_server
    config = TrafficConfig(start=START, max_requests=80, concurrency=8, seed=4)
    plan = plan_traffic(world, config)
    close = [r for r in range(1, 80) if plan.user[r] in plan.user[max(0, r - 8) : r]]
    assert close, "no user comes back within 8 requests: nothing to check"
    fresh = _fresh_items(world)
    seen, result = _against_stub(world, config, lambda body: fresh, ack_delay_s=0.02)
    assert result.events_posted > 0
    # Per user, the stub saw: a recommendation, the acknowledged clicks, the next one.
    calls: dict[str, list[str]] = {}
    for _, body in seen:
        if "events" in body:
            calls[body["events"][0]["user_id"]].append("clicks")
        else:
            calls.setdefault(body["user_id"], []).append("slate")
    clicked = result.served.clicks.any(axis=1)
    expected: dict[str, list[str]] = {}
    for user, has_clicks in zip(world.user_ids(result.served.user), clicked, strict=True):
        expected.setdefault(user, []).extend(["slate", "clicks"] if has_clicks else ["slate"])
    assert calls == expected


def test_headers_go_with_every_request_and_bad_ones_are_refused(
    world_server: tuple[World, ServerProcess],
) -> None:
    world, _ = world_server
    token = {"Authorization": "Bearer secret-token"}
    config = TrafficConfig(start=START, max_requests=5, seed=9, headers=token, concurrency=2)
    seen, result = _against_stub(world, config, lambda body: ["i140", "i141"])
    assert result.errors == {} and result.served.n_requests == 5
    sent = b"\r\nAuthorization: Bearer secret-token\r\n"
    assert len(seen) >= 5 and all(sent in head for head, _ in seen)
    assert "secret-token" not in repr(config) and "secret-token" not in str(result.to_dict())
    with pytest.raises(ValueError, match="this world does not have"):
        _against_stub(world, config, lambda body: ["i140", "x1"])
    with pytest.raises(ValueError, match="line breaks"):
        TrafficConfig(headers={"X-A": "1\r\nX-B: 2"})
    with pytest.raises(ValueError, match="precede"):
        TrafficConfig(start=10, end=5)
    with pytest.raises(ValueError, match="no request arrives"):
        plan_traffic(world, TrafficConfig(start=START, end=START))
