"""Train/test splits that mimic how a recommender is used: predict the future.

Two protocols, both returning a :class:`Split`:

* :func:`temporal_split` (global temporal): one cutoff time for everybody; train on
  events before it, test on events after it. Users first seen after the cutoff are
  *cold*: their first few test events become their history and the rest targets.
  This is the protocol that matches production (a model trained up to today serves
  tomorrow) and the one to trust.
* :func:`leave_last_n_out`: each user's last ``n`` events (by time) are held out.
  Every user is evaluated, but *other* users' events later than a user's ``now``
  stay in training, so models see the future of the catalog (the usual, documented
  leak of this protocol). Time-aware models must respect each query's ``now``.

In both, targets exclude items already in the user's history (the split counts what
it dropped) but keep items the training period never saw: they are the *new-item
targets* (``Split.is_new_target``). Models that cannot rank them score zero on them,
which is the truth, and the new-item slice of the evaluation shows who can.

Every model is ranked over the same **candidate set**: the items known at the query's
``now``, that is items with a training event before ``now`` or a catalog
``publish_time`` before ``now`` (``Split.candidates`` with ``Split.known_since``).
That is also the one denominator of catalog coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, PUBLISH_TIME, TIMESTAMP, USER_ID, VALUE
from recops.models.base import Queries
from recops.models.baselines._params import check_float, check_int

GLOBAL_TEMPORAL = "global_temporal"
LEAVE_LAST_N_OUT = "leave_last_n_out"
_REQUIRED = (USER_ID, ITEM_ID, TIMESTAMP)


@dataclass(frozen=True)
class Split:
    """Training data plus the queries and targets of the evaluated users.

    Parameters
    ----------
    train:
        Interactions a model may be fitted on.
    queries:
        One query per evaluated user: their history and the request time ``now``.
    targets:
        Per query, the held-out item ids (distinct, in order of first occurrence,
        so ``targets[i][0]`` is the user's next item).
    is_cold:
        Per query, whether the user has no event in ``train``.
    protocol:
        ``"global_temporal"`` or ``"leave_last_n_out"``.
    params:
        The protocol's parameters, so :func:`validation_split` can repeat it.
    candidates:
        Every item some query may be recommended (sorted ids): items with a training
        event, and catalog items with a publish time.
    known_since:
        Per candidate, the first moment it is known (its first training event, or
        its publish time when earlier): a candidate of query ``i`` iff
        ``known_since < queries.now[i]``.
    is_new_target:
        Per query, per target: the item has no event in ``train`` (a model that
        learns from interactions alone cannot rank it).
    catalog_times:
        Publish time by item id from the catalog the split was given (empty
        without one), so :func:`validation_split` can repeat the candidate set.
    n_dropped_seen:
        Distinct (user, item) targets dropped because the item is in the history.
    n_users_without_targets:
        Users with held-out events but no target left, hence not evaluated.
    """

    train: pd.DataFrame
    queries: Queries
    targets: tuple[np.ndarray, ...]
    is_cold: np.ndarray
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    candidates: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    known_since: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    is_new_target: tuple[np.ndarray, ...] = ()
    catalog_times: pd.Series = field(default_factory=lambda: pd.Series([], dtype=np.int64))
    n_dropped_seen: int = 0
    n_users_without_targets: int = 0

    def __post_init__(self) -> None:
        # A split built by hand may leave the candidates out: then they are the
        # training items (known from their first event) and targets are new when
        # their item has no training event.
        if len(self.candidates) == 0 and len(self.train):
            first = self.train.groupby(ITEM_ID)[TIMESTAMP].min()
            object.__setattr__(self, "candidates", first.index.to_numpy(dtype=object))
            object.__setattr__(self, "known_since", first.to_numpy(dtype=np.int64))
        if not self.is_new_target:
            known = set(self.train[ITEM_ID]) if len(self.train) else set()
            flags = tuple(np.array([t not in known for t in ts], dtype=bool) for ts in self.targets)
            object.__setattr__(self, "is_new_target", flags)

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def train_end(self) -> int:
        """The end of the training period: the cutoff, or one second after the last event."""
        if self.protocol == GLOBAL_TEMPORAL and "cutoff" in self.params:
            return int(self.params["cutoff"])
        return int(self.train[TIMESTAMP].max()) + 1 if len(self.train) else 0

    def candidate_mask(self, now: np.ndarray) -> np.ndarray:
        """``(len(now), n_candidates)`` bool: which candidates are known at each ``now``."""
        return self.known_since[None, :] < np.asarray(now, dtype=np.int64)[:, None]

    @property
    def n_candidates(self) -> int:
        """Candidates known at the latest query's ``now``: the coverage denominator."""
        if len(self) == 0:
            return len(self.candidates)
        return int((self.known_since < int(np.max(self.queries.now))).sum())

    def new_item_targets(self, row: int) -> np.ndarray:
        """The new-item targets of query ``row``."""
        return self.targets[row][self.is_new_target[row]]

    def describe(self) -> dict[str, Any]:
        """Sizes and drop counts, ready for a JSON report."""
        n_new = [int(f.sum()) for f in self.is_new_target]
        return {
            "protocol": self.protocol,
            "params": dict(self.params),
            "train_events": len(self.train),
            "users": len(self),
            "warm_users": int((~self.is_cold).sum()),
            "cold_users": int(self.is_cold.sum()),
            "users_with_new_item_targets": int(sum(n > 0 for n in n_new)),
            "candidates": self.n_candidates,
            "targets": int(sum(len(t) for t in self.targets)),
            "new_item_targets": int(sum(n_new)),
            "dropped_targets_in_history": self.n_dropped_seen,
            "users_without_targets": self.n_users_without_targets,
        }


def _check_frame(interactions: pd.DataFrame, caller: str) -> pd.DataFrame:
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"{caller}: expected a DataFrame (got {type(interactions).__name__})")
    missing = [c for c in _REQUIRED if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"{caller}: interactions lack column(s) {missing} (has {list(interactions.columns)})"
        )
    if len(interactions) == 0:
        raise ValueError(f"{caller}: interactions are empty")
    return interactions.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)


def temporal_split(
    interactions: pd.DataFrame,
    quantile: float = 0.8,
    *,
    cutoff: int | None = None,
    n_cold_history: int = 3,
    n_warm_history: int = 0,
    items: pd.DataFrame | pd.Series | None = None,
) -> Split:
    """Global temporal split at one cutoff time.

    Parameters
    ----------
    interactions:
        Events with ``user_id``, ``item_id`` and ``timestamp``.
    quantile:
        Where to cut when ``cutoff`` is not given: the ``quantile`` of the event
        times (0.8 puts about 80% of the events in training).
    cutoff:
        Explicit cutoff (unix seconds); training is every event strictly before it.
    n_cold_history:
        For cold users (no training event), how many of their first test events
        form the history; the rest are targets (0..1000).
    n_warm_history:
        The same for warm users: their first ``n_warm_history`` test events join
        their history and ``now`` moves to the last of them (0..1000). 0 (the
        default) is the batch protocol, every warm user asked at the cutoff; 1 or
        more asks them during the test period with their latest clicks, as a
        real-time system is, so that items published after the cutoff can be
        candidates (news).
    items:
        The catalog (``item_id``, ``publish_time``), or a Series of publish times
        by item id: its items with a publish time join the candidates from that
        time on.

    Returns
    -------
    Split
        Warm users: history = training events (and their first
        ``n_warm_history`` test events), ``now`` = cutoff (or the time of the last
        of those). Cold users: history = first ``n_cold_history`` test events,
        ``now`` = time of the last of them.
    """
    quantile = check_float("quantile", quantile, 0.0, 1.0, low_inclusive=False)
    n_cold_history = check_int("n_cold_history", n_cold_history, 0, 1000)
    n_warm_history = check_int("n_warm_history", n_warm_history, 0, 1000)
    events = _check_frame(interactions, "temporal_split")
    times = events[TIMESTAMP].to_numpy(dtype=np.int64)
    explicit_cutoff = cutoff is not None
    if cutoff is None:
        cutoff = int(np.quantile(times, quantile, method="lower")) + 1
    before = times < cutoff
    train, test = events[before], events[~before]
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"temporal_split: cutoff {cutoff} leaves {len(train)} training and "
            f"{len(test)} test events; both must be non-empty"
        )
    cold_mask = ~test[USER_ID].isin(pd.unique(train[USER_ID]))
    rank = test.groupby(USER_ID, sort=False).cumcount()
    given = (cold_mask & (rank < n_cold_history)) | (~cold_mask & (rank < n_warm_history))
    fresh_history, held_out = test[given], test[~given]
    history = pd.concat([train[train[USER_ID].isin(held_out[USER_ID])], fresh_history])
    now = pd.Series(cutoff, index=pd.unique(held_out[USER_ID]), dtype=np.int64)
    if len(fresh_history):
        now.update(fresh_history.groupby(USER_ID)[TIMESTAMP].max())
    params = {
        # An explicit cutoff is repeated in validation as the fraction it left in training.
        "quantile": float(before.mean()) if explicit_cutoff else quantile,
        "cutoff": int(cutoff),
        "n_cold_history": n_cold_history,
        "n_warm_history": n_warm_history,
    }
    return _assemble(train, history, held_out, now, GLOBAL_TEMPORAL, params, items)


def leave_last_n_out(
    interactions: pd.DataFrame,
    n: int = 5,
    *,
    min_history: int = 1,
    items: pd.DataFrame | pd.Series | None = None,
) -> Split:
    """Hold out each user's last ``n`` events by time.

    ``n = 5`` by default: one held-out item per user makes every per-user metric a
    coin flip (0 or 1), five give a usable recall per user while leaving MovieLens
    users (all with at least 20 ratings) a history of 15 or more.

    Parameters
    ----------
    interactions:
        Events with ``user_id``, ``item_id`` and ``timestamp``.
    n:
        Events held out per user (1..1000).
    min_history:
        Users with fewer than ``n + min_history`` events are not evaluated (their
        events all stay in training).
    items:
        The catalog, as in :func:`temporal_split`.

    Returns
    -------
    Split
        History = the user's other events, ``now`` = time of the first held-out
        event. Other users' later events remain in ``train`` (this protocol's leak).
    """
    n = check_int("n", n, 1, 1000)
    min_history = check_int("min_history", min_history, 0, 1000)
    events = _check_frame(interactions, "leave_last_n_out")
    from_end = events.groupby(USER_ID, sort=False).cumcount(ascending=False)
    size = events.groupby(USER_ID, sort=False)[USER_ID].transform("size")
    held = (from_end < n).to_numpy() & (size >= n + min_history).to_numpy()
    train, held_out = events[~held], events[held]
    if len(held_out) == 0:
        raise ValueError(
            f"leave_last_n_out: no user has at least n + min_history = {n + min_history} events"
        )
    history = train[train[USER_ID].isin(held_out[USER_ID])]
    now = held_out.groupby(USER_ID)[TIMESTAMP].min().astype(np.int64)
    params = {"n": n, "min_history": min_history}
    return _assemble(train, history, held_out, now, LEAVE_LAST_N_OUT, params, items)


def catalog_times(items: pd.DataFrame | pd.Series | None) -> pd.Series:
    """Publish time (int64) by item id of the catalog's items that have one."""
    if items is None:
        return pd.Series([], dtype=np.int64)
    if isinstance(items, pd.Series):
        return items.astype(np.int64)
    if ITEM_ID not in items.columns or PUBLISH_TIME not in items.columns or len(items) == 0:
        return pd.Series([], dtype=np.int64)
    known = items[[ITEM_ID, PUBLISH_TIME]].dropna().drop_duplicates(ITEM_ID)
    return pd.Series(
        known[PUBLISH_TIME].to_numpy(dtype=np.int64),
        index=known[ITEM_ID].astype(str).to_numpy(dtype=object),
    )


def catalog_at(
    items: pd.DataFrame | None, now: int, seen: pd.Series | np.ndarray | None = None
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The catalog as known at ``now``, and the items published at or after it.

    A model is fitted on the first part; the second is what a running system
    receives later (``TwoTower.add_items``). Items without a publish time, and
    items in ``seen`` (ids with events before ``now``: a publish time after an
    item's first event is a catalog error, as for a few MovieLens films), are
    taken as known.
    """
    if items is None or PUBLISH_TIME not in items.columns:
        return items, (items.iloc[:0] if items is not None else pd.DataFrame())
    published = items[PUBLISH_TIME]
    later = published.notna().to_numpy() & (
        published.fillna(0).to_numpy(dtype=np.int64) >= int(now)
    )
    if seen is not None:
        later &= ~items[ITEM_ID].astype(str).isin(pd.unique(np.asarray(seen).astype(str)))
    return items[~later], items[later]


def _candidates(train: pd.DataFrame, times: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Candidate ids and the time each becomes known (first event or publish time)."""
    first = train.groupby(ITEM_ID)[TIMESTAMP].min().astype(np.int64)
    first.index = first.index.map(str)
    known = pd.concat([first, times]).groupby(level=0).min().sort_index()
    return known.index.to_numpy(dtype=object), known.to_numpy(dtype=np.int64)


def _assemble(
    train: pd.DataFrame,
    history: pd.DataFrame,
    held_out: pd.DataFrame,
    now: pd.Series,
    protocol: str,
    params: dict[str, Any],
    items: pd.DataFrame | pd.Series | None,
) -> Split:
    pairs = held_out[[USER_ID, ITEM_ID]].drop_duplicates()
    seen = pairs.merge(history[[USER_ID, ITEM_ID]].drop_duplicates(), how="left", indicator=True)[
        "_merge"
    ].eq("both")
    kept = pairs[~seen.to_numpy()]
    targets_by_user = {
        str(u): g.to_numpy(dtype=object) for u, g in kept.groupby(USER_ID, sort=False)[ITEM_ID]
    }
    users: list[str] = sorted(targets_by_user)
    now.index = now.index.map(str)
    now_of = now.loc[users].to_numpy(dtype=np.int64)
    train_users = {str(u) for u in pd.unique(train[USER_ID])}
    queries = Queries.from_interactions(history, users, now=now_of)
    # A target is new when its item has no training event at all: no model fitted on
    # ``train`` learnt anything about it from interactions. In the temporal split every
    # training event precedes every ``now``, so this is "no event before now". In
    # leave-last-n-out an item whose first training event is another user's, after
    # this ``now``, is known to every model fitted on ``train`` (the protocol's leak):
    # counting it as new made that slice measure who exploits the leak (the two-tower,
    # whose prior counts only events before ``now``, scored 0 there on MovieLens).
    trained = {str(i) for i in pd.unique(train[ITEM_ID])}
    targets = tuple(targets_by_user[u] for u in users)
    is_new = tuple(np.array([str(i) not in trained for i in t], dtype=bool) for t in targets)
    times = catalog_times(items)
    candidates, known_since = _candidates(train, times)
    return Split(
        train=train.reset_index(drop=True),
        queries=queries,
        targets=targets,
        is_cold=np.array([u not in train_users for u in users], dtype=bool),
        protocol=protocol,
        params=params,
        candidates=candidates,
        known_since=known_since,
        is_new_target=is_new,
        catalog_times=times,
        n_dropped_seen=int(seen.sum()),
        n_users_without_targets=int(pairs[USER_ID].nunique() - len(users)),
    )


def validation_split(split: Split) -> Split:
    """The same protocol applied to ``split.train``: a validation set for tuning.

    The validation targets come from the end of the training period, so models are
    tuned without ever looking at the test period.

    Parameters
    ----------
    split:
        A split made by :func:`temporal_split` or :func:`leave_last_n_out`.

    Returns
    -------
    Split
        A split of ``split.train`` with the same parameters (for the temporal
        protocol, the same fraction of events in training).
    """
    if split.protocol == GLOBAL_TEMPORAL:
        return temporal_split(
            split.train,
            quantile=split.params["quantile"],
            n_cold_history=split.params["n_cold_history"],
            n_warm_history=split.params.get("n_warm_history", 0),
            items=split.catalog_times,
        )
    if split.protocol == LEAVE_LAST_N_OUT:
        return leave_last_n_out(
            split.train,
            n=split.params["n"],
            min_history=split.params["min_history"],
            items=split.catalog_times,
        )
    raise ValueError(
        f"validation_split: unknown protocol {split.protocol!r} "
        f"(expected {GLOBAL_TEMPORAL!r} or {LEAVE_LAST_N_OUT!r})"
    )


def implicit_only(interactions: pd.DataFrame, min_rating: float | None = None) -> pd.DataFrame:
    """Turn explicit ratings into implicit feedback.

    Parameters
    ----------
    interactions:
        Events with ``user_id``, ``item_id``, ``timestamp`` and ``value``.
    min_rating:
        ``None`` keeps every rating ("a rating is an interaction"); a number keeps
        only events with ``value >= min_rating`` (e.g. 4 for "liked").

    Returns
    -------
    pandas.DataFrame
        One event per (user, item), the earliest, sorted by time, with ``value``
        set to 1.0; other columns are carried along.
    """
    events = _check_frame(interactions, "implicit_only")
    if min_rating is not None:
        threshold = check_float("min_rating", min_rating, -np.inf)
        if VALUE not in events.columns:
            raise ValueError(f"implicit_only: `min_rating` needs a `{VALUE}` column")
        events = events[events[VALUE].to_numpy(dtype=np.float64) >= threshold]
    events = events.drop_duplicates([USER_ID, ITEM_ID], keep="first").copy()
    events[VALUE] = 1.0
    return events.reset_index(drop=True)
