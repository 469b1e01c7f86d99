"""New items on the built-in world: how much traffic they get, and what serving them is worth.

On a news site most clicks go to articles published after any model was trained.
The world knows the true click probability of every (user, item, slot, time), so two
questions have exact answers (no logged-policy bias):

1. **the share of clicks on new items**: of the logged clicks after the training
   cutoff, the share on items published at or after it;
2. **the CTR of a model with and without item updates**: requests are drawn from
   the world's own traffic after the cutoff; each gets the top ``slate_size`` of the
   items on the site at that moment that the model can rank, scored with the
   user's clicks before the request (the real-time state). Without updates the
   model knows the items published before the cutoff; with updates it also ranks
   every item published since, embedded from content (``model.with_items``). The
   CTR is the world's expected clicks per shown item, :math:`\\frac{1}{K}\\sum_k
   P(\\text{click} \\mid u, i_k, k, t)` averaged over requests, next to the oracle's
   (the true best slate) and recent popularity's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, PUBLISH_TIME, TIMESTAMP, USER_ID
from recops.data.world import World
from recops.models.base import Queries, Recommender
from recops.models.baselines._params import check_int

#: Requests scored per step (the dense score matrix is ``batch × n_items``).
BATCH = 256


@dataclass(frozen=True)
class PolicyValue:
    """The exact CTR of one way of filling slates, and the share of clicks on new items."""

    name: str
    ctr: float
    new_item_click_share: float

    def to_dict(self) -> dict[str, Any]:
        """For JSON reports."""
        return {
            "name": self.name,
            "ctr": self.ctr,
            "new_item_click_share": self.new_item_click_share,
        }


@dataclass(frozen=True)
class FreshnessReport:
    """What :func:`new_item_report` measured."""

    cutoff: int
    n_requests: int
    logged_new_item_click_share: float
    policies: tuple[PolicyValue, ...]

    def to_dict(self) -> dict[str, Any]:
        """For JSON reports."""
        return {
            "cutoff": self.cutoff,
            "requests": self.n_requests,
            "logged_new_item_click_share": self.logged_new_item_click_share,
            "policies": [p.to_dict() for p in self.policies],
        }


def logged_new_item_share(clicks: pd.DataFrame, catalog: pd.DataFrame, cutoff: int) -> float:
    """Share of the clicks at or after ``cutoff`` that went to items published at or after it."""
    after = clicks[clicks[TIMESTAMP].to_numpy(dtype=np.int64) >= cutoff]
    if len(after) == 0:
        return float("nan")
    published = catalog.drop_duplicates(ITEM_ID).set_index(ITEM_ID)[PUBLISH_TIME]
    times = published.reindex(after[ITEM_ID]).to_numpy(dtype=np.float64)
    return float(np.mean(np.nan_to_num(times, nan=-np.inf) >= cutoff))


class _History:
    """Each user's clicks in time order, for causal queries at any request time."""

    def __init__(self, clicks: pd.DataFrame) -> None:
        ordered = clicks.sort_values(TIMESTAMP, kind="stable")
        self.by_user = {
            str(u): (g[ITEM_ID].to_numpy(dtype=object), g[TIMESTAMP].to_numpy(dtype=np.int64))
            for u, g in ordered.groupby(USER_ID, sort=False)
        }

    def queries(self, users: np.ndarray, times: np.ndarray) -> Queries:
        empty = (np.array([], dtype=object), np.array([], dtype=np.int64))
        histories, stamps = [], []
        for user, t in zip(users, times, strict=True):
            items, when = self.by_user.get(str(user), empty)
            cut = int(np.searchsorted(when, int(t), side="left"))
            histories.append(items[:cut])
            stamps.append(when[:cut])
        return Queries(list(map(str, users)), histories, stamps, np.asarray(times, np.int64))


def _slates(
    model: Recommender,
    world: World,
    history: _History,
    users: np.ndarray,
    times: np.ndarray,
    k: int,
) -> np.ndarray:
    """``(R, k)`` world item indices: the model's best items on the site at each time."""
    ids = world.item_ids()
    column = pd.Index(np.asarray(model.item_ids_).astype(str)).get_indexer(ids.astype(str))
    lo, hi = world.available_range(times)
    out = np.full((len(users), k), -1, dtype=np.int64)
    for start in range(0, len(users), BATCH):
        part = slice(start, start + BATCH)
        scores = np.asarray(
            model.score(history.queries(world.user_ids(users[part]), times[part])), np.float64
        )
        for row, (a, b) in enumerate(zip(lo[part], hi[part], strict=True)):
            on_site = np.arange(a, b)
            known = on_site[column[on_site] >= 0]
            if len(known) == 0:
                continue
            best = known[np.argsort(-scores[row, column[known]], kind="stable")[:k]]
            out[start + row, : len(best)] = best
    return out


def _value(
    name: str, world: World, users: np.ndarray, times: np.ndarray, slates: np.ndarray, cutoff: int
) -> PolicyValue:
    probs = world.slate_click_probability(users, slates, times)
    published = world.catalog()[PUBLISH_TIME].to_numpy(dtype=np.int64)
    new = np.where(slates >= 0, published[np.maximum(slates, 0)] >= cutoff, False)
    total = probs.sum()
    return PolicyValue(
        name,
        float(probs.sum(axis=1).mean() / slates.shape[1]),
        float(probs[new].sum() / total) if total > 0 else float("nan"),
    )


def new_item_report(
    world: World,
    clicks: pd.DataFrame,
    cutoff: int,
    models: dict[str, Callable[[], Recommender]],
    *,
    n_requests: int = 2_000,
    seed: int = 0,
) -> FreshnessReport:
    """Share of clicks on new items, and each model's exact CTR with and without updates.

    Parameters
    ----------
    world:
        The simulated site (its truth scores the slates).
    clicks:
        Its logged clicks (``user_id, item_id, timestamp``); models are fitted on
        those before ``cutoff`` and read the rest as the users' real-time history.
    cutoff:
        The training cutoff (unix seconds).
    models:
        Name → a factory of an unfitted model. A model with ``with_items`` (the
        two-tower) is also scored with the items published after the cutoff added.
    n_requests:
        Requests drawn from the world's traffic after the cutoff (1..1_000_000).
    seed:
        Seeds the draw of requests.

    Returns
    -------
    FreshnessReport
        Policies: the oracle, then per model ``"<name>"`` (items known at the cutoff)
        and ``"<name> + new items"`` when it can add items.
    """
    n_requests = check_int("n_requests", n_requests, 1, 1_000_000)
    catalog = world.catalog()
    k = world.config.slate_size
    rng = np.random.default_rng(seed)
    times, users = world.sample_arrivals(rng, int(cutoff), world.config.end_time)
    if len(times) == 0:
        raise ValueError(f"new_item_report: no traffic after the cutoff {cutoff}")
    pick = np.sort(rng.choice(len(times), size=min(n_requests, len(times)), replace=False))
    times, users = times[pick], users[pick]
    train = clicks[clicks[TIMESTAMP].to_numpy(dtype=np.int64) < cutoff]
    published = catalog[PUBLISH_TIME].to_numpy(dtype=np.int64)
    known, later = catalog[published < cutoff], catalog[published >= cutoff]
    history = _History(clicks)
    from recops.data.world import OraclePolicy
    from recops.data.world.logging_policy import RequestBatch

    lo, hi = world.available_range(times)
    requests = RequestBatch(times, users, lo, hi, np.zeros(world.n_items))
    oracle = OraclePolicy(world).choose(rng, requests).items
    values = [_value("oracle", world, users, times, oracle, cutoff)]
    for name, factory in models.items():
        model = factory().fit(train, known)
        values.append(
            _value(
                name, world, users, times, _slates(model, world, history, users, times, k), cutoff
            )
        )
        with_items = getattr(model, "with_items", None)
        if with_items is not None:
            grown, _ = with_items(later)
            slates = _slates(grown, world, history, users, times, k)
            values.append(_value(f"{name} + new items", world, users, times, slates, cutoff))
    return FreshnessReport(
        int(cutoff), len(times), logged_new_item_share(clicks, catalog, cutoff), tuple(values)
    )
