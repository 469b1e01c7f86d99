"""A tiny training config and a server event log with exploring exposures, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recops.data.world import WorldConfig, generate_world
from recops.pipelines.training import TrainingConfig
from recops.serving.eventlog import EventLog, SQLiteEventLog
from recops.serving.records import Event, Exposure

WORLD = {"n_users": 150, "n_items": 200, "days": 4, "seed": 1}
#: A two-tower that trains in well under a second on that world.
TINY_MODEL = {
    "dim": 8,
    "hidden": 16,
    "epochs": 2,
    "batch_size": 64,
    "text_buckets": 128,
    "max_history": 10,
    "prior_horizons": [],
}


def tiny_config(folder: Path, **sections: dict[str, object]) -> TrainingConfig:
    """The training pipeline on the tiny world, publishing into ``folder / "models"``."""
    document: dict[str, object] = {
        "source": {"kind": "world", "world": WORLD},
        "model": TINY_MODEL,
        "evaluate": {"n_boot": 20},
        "publish": {"repository": str(folder / "models"), "name": "two_tower"},
    }
    document.update(sections)
    return TrainingConfig.model_validate(document)


def exploring_log(
    path: Path, n_requests: int = 150, seed: int = 0, log: EventLog | None = None
) -> Path:
    """An event log of slates drawn uniformly from 10 candidates, with some clicks.

    Every ordered slate of 3 of the 10 candidates is equally likely, so each shown item
    had probability 1/10 at its position: the exact propensity a server would log.
    Written to the SQLite file ``path``, or to ``log`` (closed afterwards) when given.
    """
    _, data = generate_world(WorldConfig(**WORLD))
    rng = np.random.default_rng(seed)
    items = data.items["item_id"].to_numpy(dtype=object)
    users = data.users["user_id"].to_numpy(dtype=object)
    start = int(data.interactions["timestamp"].max()) + 60
    log = SQLiteEventLog(path) if log is None else log
    exposures, clicks = [], []
    for r in range(n_requests):
        candidates = [str(i) for i in rng.choice(items, 10, replace=False)]
        shown = [candidates[j] for j in rng.permutation(10)[:3]]
        request_id, unit, now = f"req-{r:04d}", str(rng.choice(users)), start + 30 * r
        exposures.append(
            Exposure(
                request_id=request_id,
                timestamp=now,
                unit=unit,
                model="two_tower",
                version="0",
                policy={"kind": "uniform"},
                items=shown,
                propensities=[0.1, 0.1, 0.1],
                scores=[0.0, 0.0, 0.0],
                candidates=candidates,
                candidate_scores=[0.0] * 10,
            )
        )
        for position, item in enumerate(shown):
            if rng.random() < 0.3 / (position + 1):
                context = {"request_id": request_id, "position": position}
                clicks.append(Event(unit, item, "click", 1.0, now + 5, context))
    try:
        log.submit_exposures(exposures).result()
        log.append(clicks)
    finally:
        log.close()
    return path
