"""Fixtures: a tiny world's log as the server would have written it, a controller config on it,
and synthetic traffic that serves the running experiments the way the server assigns them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow", reason="the controller's registry needs MLflow")

from recops.ct import Controller, CTConfig
from recops.data.world import WorldConfig, generate_world
from recops.experiments.assignment import Assigner
from recops.experiments.store_postgres import open_experiment_store
from recops.monitoring.world import replay_world
from recops.serving.backends import event_log_at
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Assignment, Event, Exposure
from tests.pipelines.training_fixtures import TINY_MODEL, WORLD
from tests.registry.conftest import mlflow_template, tracking_uri  # noqa: F401

DAY = 86_400
MODEL = "two_tower"
#: Gate rules a model trained on a few more events always passes (the tiny world's
#: offline metrics are too noisy for a 2% rule), and a corrupted split fails.
LENIENT_GATE = {
    "rules": [
        {"kind": "offline", "metric": "recall@20", "max_relative_drop": 0.5},
        {"kind": "data_checks"},
        {"kind": "smoke_test"},
    ]
}


@dataclass(frozen=True)
class Site:
    """The tiny world's log (a SQLite file or a PostgreSQL URL) and catalog, and its end."""

    folder: Path
    event_log: Path | str
    catalog: Path
    items: list[str]
    users: list[str]
    end: int


@pytest.fixture
def site(tmp_path: Path) -> Site:
    world, data = generate_world(WorldConfig(**WORLD))
    event_log = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(event_log, synchronous="NORMAL")
    try:
        replay_world(world, data.interactions, log, model=MODEL)
    finally:
        log.close()
    catalog = tmp_path / "items.parquet"
    data.items.to_parquet(catalog, index=False)
    return Site(
        folder=tmp_path,
        event_log=event_log,
        catalog=catalog,
        items=[str(i) for i in data.items["item_id"]],
        users=[str(u) for u in data.users["user_id"]],
        end=world.config.end_time,
    )


def ct_document(site: Site, uri: str, **sections: Any) -> dict[str, Any]:
    """A controller config on ``site``, its stores in the test's folder."""
    folder = site.folder
    pipeline = {
        "source": {"kind": "event_log", "path": str(site.event_log), "catalog": str(site.catalog)},
        "model": TINY_MODEL,
        "evaluate": {"n_boot": 20},
        "ope": {"max_requests": 200, "min_requests": 50},
        "publish": {"repository": str(folder / "models"), "name": MODEL},
        "registry": {"tracking_uri": uri},
        "gate": LENIENT_GATE,
        "storage": {"artifacts": str(folder / "artifacts"), "runs": str(folder / "runs.sqlite3")},
    }
    document: dict[str, Any] = {
        "event_log": str(site.event_log),
        "pipeline": pipeline,
        # Cycles after the first are started by hand (train_now) unless a test says so.
        "triggers": {"drift": {"enabled": False}},
        "experiment": {"min_units": 40, "min_duration_s": 3_600, "max_duration_s": 3 * DAY},
        "watch": {"holdback": 0.5, "duration_s": 3_600, "min_units": 40},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


@pytest.fixture
def controller(site: Site, tracking_uri: str) -> Iterator[Controller]:  # noqa: F811
    with Controller(CTConfig.model_validate(ct_document(site, tracking_uri))) as made:
        yield made


def serve(
    site: Site,
    now: int,
    ctr: Mapping[str, float],
    *,
    units: int = 120,
    requests: int = 2,
    k: int = 5,
    seed: int = 0,
) -> int:
    """Serve ``requests`` slates to each of ``units`` users as the server would.

    Each user's variant comes from the running experiments' assignment (the
    server's :class:`~recops.experiments.assignment.Assigner`); each shown item is
    clicked with probability ``ctr[variant]`` (interleaved: of the ranking that placed
    it); exposures, first assignments and clicks go into the event log. Returns the
    slates served in an experiment.
    """
    with open_experiment_store(site.event_log) as store:
        running = {r.name: r for r in store.running()}
    assigner = Assigner(running.values(), now)
    rng = np.random.default_rng(seed)
    exposures, assignments, clicks = [], [], []
    # The world's users first, then visitors the model never saw.
    visitors = [f"visitor-{i}" for i in range(max(0, units - len(site.users)))]
    for user in [*site.users[:units], *visitors]:
        placed = assigner.assign(user_id=user)
        if not placed:
            continue
        where = placed[0]
        record = running[where.experiment]
        ref = record.models[where.serves[0]]
        assignments.append(Assignment(where.experiment, user, where.variant, now))
        for r in range(requests):
            stamp = now + 60 * r
            request_id = f"{where.experiment}-{user}-{seed}-{r}"
            shown = [str(i) for i in rng.choice(site.items, k, replace=False)]
            # Interleaving: the two rankings take turns (team draft); otherwise one serves.
            sources = [where.serves[j % len(where.serves)] for j in range(k)]
            exposures.append(
                Exposure(
                    request_id=request_id, timestamp=stamp, unit=user, model=ref.model,
                    version=ref.version, policy={"kind": "greedy"}, items=shown,
                    propensities=[1.0] * k, scores=[0.0] * k, experiment=where.experiment,
                    variant=where.variant,
                    sources=sources if len(where.serves) > 1 else None,
                )
            )  # fmt: skip
            for position, item in enumerate(shown):
                if rng.random() < ctr[sources[position]]:
                    context = {"request_id": request_id, "position": position}
                    clicks.append(Event(user, item, "click", 1.0, stamp + 5, context))
    log = event_log_at(site.event_log)
    try:
        log.submit_exposures(exposures, assignments).result()
        if clicks:
            log.append(clicks)
    finally:
        log.close()
    return len(exposures)


def add_clicks(site: Site, now: int, n: int, *, seed: int = 1) -> None:
    """``n`` clicks of random users on random items at ``now`` (new data to train on)."""
    rng = np.random.default_rng(seed)
    events = [
        Event(str(rng.choice(site.users)), str(rng.choice(site.items)), "click", 1.0, now + i)
        for i in range(n)
    ]
    log = event_log_at(site.event_log)
    try:
        log.append(events)
    finally:
        log.close()


def actions(controller: Controller) -> list[str]:
    """The logged decisions' actions, oldest first."""
    return [d.action for d in controller.store.decisions(MODEL)]


def registered(controller: Controller) -> pd.DataFrame:
    """The registry's versions of the model: version, gate, aliases."""
    rows = [(v.version, v.gate, ",".join(v.aliases)) for v in controller.registry.versions(MODEL)]
    return pd.DataFrame(rows, columns=["version", "gate", "aliases"])
