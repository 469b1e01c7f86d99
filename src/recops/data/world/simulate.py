"""Running the site: traffic meets the logging policy, the truth draws the clicks.

The simulation steps one hour at a time. Within an hour every request is handled
in one vectorised batch; the per-item click counts that policies see
(``RequestBatch.recent_clicks``) are refreshed between hours (as a production
popularity job would be), from the clicks of the last
``ceil(popularity_window_hours)`` whole hours.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.progress import track

from recops.data.schema import EVENT, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from recops.data.world.config import SECONDS_PER_HOUR
from recops.data.world.logging_policy import (
    PopularityExplorationPolicy,
    RequestBatch,
    SlatePolicy,
)

if TYPE_CHECKING:
    from recops.data.world.truth import World

REQUEST_ID = "request_id"
POSITION = "position"
PROPENSITY = "propensity"
SLATE_PROPENSITY = "slate_propensity"

# A click follows its impression by 1 to this many seconds.
MAX_CLICK_DELAY_SECONDS = 120


@dataclass(frozen=True)
class SimulationLog:
    """Everything that happened, per request, as arrays (``R`` requests, ``K`` slots).

    Parameters
    ----------
    time:
        ``(R,)`` int64 unix second of each request, non-decreasing.
    user:
        ``(R,)`` int64 user index.
    slates:
        ``(R, K)`` int64 shown item indices, ``-1`` in empty slots.
    clicks:
        ``(R, K)`` bool, drawn from the truth.
    click_time:
        ``(R, K)`` int64 unix second of each click (meaningless where no click).
    click_probability:
        ``(R, K)`` the true click probability of each shown slot.
    propensity:
        ``(R, K)`` logging probability of that item in that slot.
    slate_propensity:
        ``(R,)`` logging probability of the whole ordered slate.
    candidate_lo, candidate_hi:
        ``(R,)`` the items available to the policy for request ``r`` were
        ``candidate_lo[r] .. candidate_hi[r] - 1``.
    """

    time: np.ndarray
    user: np.ndarray
    slates: np.ndarray
    clicks: np.ndarray
    click_time: np.ndarray
    click_probability: np.ndarray
    propensity: np.ndarray
    slate_propensity: np.ndarray
    candidate_lo: np.ndarray
    candidate_hi: np.ndarray

    @property
    def n_requests(self) -> int:
        """Number of served requests ``R``; the request id is the row index."""
        return len(self.time)

    @property
    def expected_clicks(self) -> np.ndarray:
        """``(R,)`` true expected clicks of each shown slate; its mean is the policy's value."""
        return self.click_probability.sum(axis=1)

    def to_interactions(self, user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
        """The log as recops interactions: an ``impression`` per shown slot, a ``click`` per click.

        Impressions have ``value`` 1.0 when clicked, else 0.0; clicks have 1.0. Both
        carry the context columns ``request_id``, ``position`` (0 = top),
        ``propensity`` and ``slate_propensity``. Rows are sorted by timestamp, then
        request, then impressions before clicks, then position.

        Parameters
        ----------
        user_ids, item_ids:
            Object arrays mapping user and item indices to ids.
        """
        req, pos = np.nonzero(self.slates >= 0)
        clicked = self.clicks[req, pos]
        creq, cpos = req[clicked], pos[clicked]
        rows_req = np.concatenate([req, creq])
        rows_pos = np.concatenate([pos, cpos])
        is_click = np.concatenate([np.zeros(len(req), bool), np.ones(len(creq), bool)])
        timestamp = np.concatenate([self.time[req], self.click_time[creq, cpos]])
        order = np.lexsort((rows_pos, is_click, rows_req, timestamp))
        rows_req, rows_pos, is_click = rows_req[order], rows_pos[order], is_click[order]
        item = self.slates[rows_req, rows_pos]
        value = np.where(is_click, True, self.clicks[rows_req, rows_pos]).astype(np.float64)
        return pd.DataFrame(
            {
                USER_ID: pd.Series(user_ids[self.user[rows_req]], dtype=object),
                ITEM_ID: pd.Series(item_ids[item], dtype=object),
                EVENT: pd.Series(np.where(is_click, "click", "impression"), dtype=object),
                VALUE: pd.Series(value, dtype=np.float64),
                TIMESTAMP: pd.Series(timestamp[order], dtype=np.int64),
                REQUEST_ID: pd.Series(rows_req, dtype=np.int64),
                POSITION: pd.Series(rows_pos, dtype=np.int64),
                PROPENSITY: pd.Series(self.propensity[rows_req, rows_pos], dtype=np.float64),
                SLATE_PROPENSITY: pd.Series(self.slate_propensity[rows_req], dtype=np.float64),
            }
        )


def default_policy(world: World) -> PopularityExplorationPolicy:
    """The built-in logging policy with the world's ``slate_size`` and ``exploration``."""
    return PopularityExplorationPolicy(
        slate_size=world.config.slate_size, exploration=world.config.exploration
    )


def simulate_log(
    world: World,
    rng: np.random.Generator,
    policy: SlatePolicy | None = None,
    *,
    progress: bool = False,
) -> SimulationLog:
    """Simulate the whole period of ``world`` under ``policy``.

    The traffic (request times and users) depends only on ``rng``, not on the
    policy, so two policies run with equal seeds meet the same requests. The mean of
    ``expected_clicks`` of the result estimates the policy's true value per request
    (exact given the requests and slates; Monte Carlo over them).

    Parameters
    ----------
    world:
        The ground truth.
    rng:
        Source of randomness for traffic, slates and clicks.
    policy:
        The logging policy; :func:`default_policy` when None.
    progress:
        Show a progress bar over the simulated hours.

    Returns
    -------
    SimulationLog
        One row per served request. Requests that find no available item are dropped.
    """
    policy = default_policy(world) if policy is None else policy
    cfg = world.config
    times, users = world.sample_arrivals(rng, cfg.start_time, cfg.end_time)
    # Slates and clicks get their own stream so that traffic is policy-independent.
    rng = np.random.default_rng(rng.integers(2**63))
    edges = np.arange(cfg.start_time, cfg.end_time + 1, SECONDS_PER_HOUR)
    bounds = np.searchsorted(times, edges)
    window_hours = math.ceil(cfg.popularity_window_hours)
    recent_clicks = np.zeros(world.n_items, dtype=np.int64)
    # Policies get a read-only view: the counts are the site's, not theirs to change.
    visible_clicks = recent_clicks.view()
    visible_clicks.flags.writeable = False
    recent: deque[np.ndarray] = deque()
    parts: list[SimulationLog] = []
    hours: Iterable[int] = range(len(edges) - 1)
    if progress:
        hours = track(hours, description="simulating hours", total=len(edges) - 1)
    for hour in hours:
        sl = slice(bounds[hour], bounds[hour + 1])
        part = _serve(world, policy, rng, times[sl], users[sl], visible_clicks)
        parts.append(part)
        clicked_items = part.slates[part.clicks]
        np.add.at(recent_clicks, clicked_items, 1)
        recent.append(clicked_items)
        if len(recent) > window_hours:
            np.subtract.at(recent_clicks, recent.popleft(), 1)
    return _concat(parts)


def _serve(
    world: World,
    policy: SlatePolicy,
    rng: np.random.Generator,
    t: np.ndarray,
    users: np.ndarray,
    recent_clicks: np.ndarray,
) -> SimulationLog:
    lo, hi = world.available_range(t)
    served = hi > lo
    t, users, lo, hi = t[served], users[served], lo[served], hi[served]
    requests = RequestBatch(time=t, user=users, lo=lo, hi=hi, recent_clicks=recent_clicks)
    decision = policy.choose(rng, requests)
    if decision.items.shape != (len(t), policy.slate_size):
        raise ValueError(
            f"policy returned slates of shape {decision.items.shape}; expected "
            f"({len(t)}, {policy.slate_size})"
        )
    probs = world.slate_click_probability(users, decision.items, t)
    clicks = rng.random(probs.shape) < probs
    delay = rng.integers(1, MAX_CLICK_DELAY_SECONDS + 1, size=probs.shape)
    # Clicks never spill past the period, so every timestamp stays inside it.
    click_time = np.minimum(t[:, None] + delay, world.config.end_time - 1)
    return SimulationLog(
        time=t,
        user=users,
        slates=decision.items,
        clicks=clicks,
        click_time=np.maximum(click_time, t[:, None]),
        click_probability=probs,
        propensity=decision.propensity,
        slate_propensity=decision.slate_propensity,
        candidate_lo=lo,
        candidate_hi=hi,
    )


def _concat(parts: list[SimulationLog]) -> SimulationLog:
    fields = SimulationLog.__dataclass_fields__
    return SimulationLog(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})
