"""The world generator's traffic written into an event log as the server logs it.

Drift detection is checked where the truth is known: a world (:mod:`recops.data.world`)
with or without an injected population drift (``shock_day``) is generated, and its
logged requests are written into an :class:`~recops.serving.eventlog.EventLog` in the
server's own records, so the monitor reads them exactly as it reads production:

* one :class:`~recops.serving.records.Exposure` per logged request: the shown items
  in slot order with the logging policy's propensities; the scores of a stand-in model
  of known quality, :func:`recops.ope.simulation.noisy_oracle_scores` (the true
  attraction logit at the request time plus fixed noise); the context's ``strategy``
  as the server decides it, ``cold_start`` while the user has no earlier click,
  ``personalized`` after;
* one click :class:`~recops.serving.records.Event` per logged click, carrying its
  slate's ``request_id`` and ``position``.

The slates are the world's logging policy's (popularity with exploration), not a
served model's: what is checked is the monitor, on the traffic a drift changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recops.data.schema import EVENT, ITEM_ID, TIMESTAMP, USER_ID
from recops.data.world.truth import World
from recops.ope.simulation import noisy_oracle_scores
from recops.serving.eventlog import EventLog
from recops.serving.records import Event, Exposure

#: The policy spec the replayed exposures carry.
WORLD_POLICY = {"kind": "world_logging_policy"}
_CHUNK = 20_000


def _version_at(stamps: np.ndarray, versions: Sequence[tuple[int, str]]) -> np.ndarray:
    starts = np.asarray([s for s, _ in versions], dtype=np.int64)
    if np.any(np.diff(starts) <= 0):
        raise ValueError("`versions` must be (start, version) pairs in increasing start order")
    names = np.asarray([v for _, v in versions], dtype=object)
    at = np.searchsorted(starts, stamps, side="right") - 1
    if np.any(at < 0):
        raise ValueError(
            f"`versions` must start at or before the first request ({int(stamps.min())})"
        )
    return names[at]


def replay_world(
    world: World,
    interactions: pd.DataFrame,
    log: EventLog,
    *,
    score_noise: float = 1.0,
    model: str = "world",
    versions: Sequence[tuple[int, str]] = ((0, "1"),),
) -> int:
    """Write the world's logged requests and clicks into ``log``; returns the slates written.

    Parameters
    ----------
    world:
        The world that generated ``interactions`` (it scores the shown items).
    interactions:
        The world's logged impressions and clicks (``request_id`` and ``position``
        columns), e.g. ``generate_world(config)[1].interactions``, or a time range of it.
    log:
        Where the exposures and click events go.
    score_noise:
        Noise of the stand-in model's scores (0: the true attraction logits).
    model, versions:
        The model name, and ``(start, version)`` pairs: requests from ``start`` (unix
        seconds) on are labelled ``version``.
    """
    missing = [c for c in ("request_id", "position") if c not in interactions.columns]
    if missing:
        raise ValueError(f"`interactions` lacks column(s) {', '.join(missing)} (a world's log)")
    shown = interactions[interactions[EVENT] == "impression"].sort_values(
        ["request_id", "position"], kind="stable"
    )
    clicks = interactions[interactions[EVENT] == "click"]
    if shown.empty:
        return 0
    users = world.user_index(shown[USER_ID].to_numpy(dtype=object))
    items = world.item_index(shown[ITEM_ID].to_numpy(dtype=object))
    stamps = shown[TIMESTAMP].to_numpy(dtype=np.int64)
    scores = noisy_oracle_scores(world, score_noise)(users, items[:, None], stamps)[:, 0]
    first_click = clicks.groupby(USER_ID)[TIMESTAMP].min()
    cold = ~(shown[USER_ID].map(first_click).to_numpy(dtype=np.float64) < stamps)
    frame = pd.DataFrame(
        {
            "request_id": shown["request_id"].astype(str).to_numpy(),
            "unit": shown[USER_ID].astype(str).to_numpy(),
            "timestamp": stamps,
            "item": shown[ITEM_ID].astype(str).to_numpy(),
            "propensity": shown["propensity"].to_numpy(dtype=np.float64),
            "score": scores,
            "cold": cold,
        }
    )
    slates = frame.groupby("request_id", sort=False).agg(
        unit=("unit", "first"),
        timestamp=("timestamp", "first"),
        items=("item", list),
        propensities=("propensity", list),
        scores=("score", list),
        cold=("cold", "first"),
    )
    slates = slates.sort_values("timestamp", kind="stable")
    labels = _version_at(slates["timestamp"].to_numpy(dtype=np.int64), versions)
    columns = ("unit", "timestamp", "items", "propensities", "scores", "cold")
    exposures = [
        Exposure(
            request_id=str(request_id),
            timestamp=int(stamp),
            unit=str(unit),
            model=model,
            version=str(version),
            policy=WORLD_POLICY,
            items=shown_items,
            propensities=propensities,
            scores=slate_scores,
            context={
                "strategy": "cold_start" if is_cold else "personalized",
                "k": len(shown_items),
            },
        )
        for request_id, version, (
            unit,
            stamp,
            shown_items,
            propensities,
            slate_scores,
            is_cold,
        ) in zip(slates.index, labels, zip(*(slates[c] for c in columns), strict=True), strict=True)
    ]
    for start in range(0, len(exposures), _CHUNK):
        log.submit_exposures(exposures[start : start + _CHUNK]).result()
    events = [
        Event(str(u), str(i), "click", 1.0, int(t), {"request_id": str(r), "position": int(p)})
        for u, i, t, r, p in zip(
            clicks[USER_ID],
            clicks[ITEM_ID],
            clicks[TIMESTAMP],
            clicks["request_id"],
            clicks["position"],
            strict=True,
        )
    ]
    for start in range(0, len(events), _CHUNK):
        log.append(events[start : start + _CHUNK])
    return len(exposures)
