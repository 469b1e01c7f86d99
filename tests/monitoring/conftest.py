"""Small worlds logged as the server logs them, with and without an injected drift."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from recops.data.world import World, WorldConfig, generate_world
from recops.monitoring.features import Window
from recops.monitoring.logs import ServingLog, read_serving_log
from recops.monitoring.world import replay_world
from recops.serving.eventlog import SQLiteEventLog

DAY = 86_400
#: Random slates (exploration 1): what users click then follows their interests, not
#: yesterday's hits (benchmarks/drift_detection.py measures the popularity policy too).
BASE = WorldConfig(n_users=800, n_items=1_600, days=16, seed=0, exploration=1.0)
SHOCK_DAY = 12


@dataclass(frozen=True)
class LoggedWorld:
    """A world, its generated data, its event log and the windows compared."""

    world: World
    interactions: pd.DataFrame
    catalog: pd.DataFrame
    path: Path
    log: ServingLog
    reference: Window
    current: Window


def largest_category(config: WorldConfig) -> int:
    """Index of the category with the most items (the shock's target)."""
    world = World.from_config(config)
    counts = world.catalog()["categories"].map(lambda c: c[0]).value_counts()
    return list(world.items.category_names).index(counts.index[0])


def log_world(config: WorldConfig, folder: Path) -> LoggedWorld:
    world, data = generate_world(config)
    path = folder / "events.sqlite3"
    log = SQLiteEventLog(path, synchronous="NORMAL")
    try:
        replay_world(world, data.interactions, log, versions=((0, "1"),))
    finally:
        log.close()
    start = config.start_time
    return LoggedWorld(
        world,
        data.interactions,
        data.items,
        path,
        read_serving_log(path),
        Window(start + 7 * DAY, start + 11 * DAY, "log"),
        Window(start + SHOCK_DAY * DAY, start + 16 * DAY, "log"),
    )


@pytest.fixture(scope="session")
def calm_world(tmp_path_factory: pytest.TempPathFactory) -> LoggedWorld:
    return log_world(BASE, tmp_path_factory.mktemp("calm"))


@pytest.fixture(scope="session")
def shocked_world(tmp_path_factory: pytest.TempPathFactory) -> LoggedWorld:
    config = BASE.model_copy(
        update={
            "shock_day": SHOCK_DAY,
            "shock_category": largest_category(BASE),
            "shock_strength": 6.0,
        }
    )
    return log_world(config, tmp_path_factory.mktemp("shocked"))
