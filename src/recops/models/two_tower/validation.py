"""The validation window, its metrics and the search for the tower / prior blend.

The model is evaluated on a global temporal split (``recops.evaluation``): every
user's events after one moment are the test, the events before it the history.
:func:`split_validation` cuts the last part of the training period the same way
(:class:`ValidationWindow`: warm users keep their history before the window, cold
ones get their first :data:`COLD_HISTORY` window events as history), so what is
picked on it is picked for the evaluation the model will face. Three choices are
made on the window:

* the epoch: early stopping on the window's score (the training loop);
* the prior: the softmax-trained one, one fitted to a consumption horizon, or a
  window's counts;
* the blend: :func:`validation_blend` scores the tower weights of :data:`BLEND_GRID`
  for short and long histories with the NDCG (and recall, see
  :data:`VALIDATION_METRICS`) of each user's next items, vectorised over the whole
  score matrix (:class:`ValidationTargets`), and keeps the most diverse blend among
  those tied with the best.

This module measures; the decisions (the stopping epoch, the prior's choice in
``_choose_horizon``) are taken in :mod:`~recops.models.two_tower.training`, which
records them in its ``TrainingSummary``.

Data-parallel (``torch.distributed``), each worker scores its share of the blend
grid and all of them gather every result, so every worker takes the same decisions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.data import TrainingData, age_hours, user_vectors
from recops.models.two_tower.distributed import data_parallel, gather_strided
from recops.models.two_tower.features import TimeCounts, build_time_counts
from recops.models.two_tower.inference import history_weight
from recops.models.two_tower.item_knn import KNN_WEIGHT_GRID, ItemKnnTerm, similarity_grid
from recops.models.two_tower.network import PriorNet, TwoTowerNet


@dataclass(frozen=True)
class ValidationWindow:
    """Users active in the last part of the training period, as the test will see them.

    Mirrors the global temporal split the model is evaluated on: a user with events
    before ``start`` has those as history and ``now = start``; a user first seen in
    the window has their first ``COLD_HISTORY`` window events as history and ``now``
    at the last of them. Targets are the other window items, seen ones excluded.
    ``counts`` hold only the events before ``start``, as a model trained up to
    ``start`` would have them.
    """

    start: int
    users: np.ndarray
    now: np.ndarray
    history: np.ndarray
    history_times: np.ndarray
    targets: list[np.ndarray]
    counts: TimeCounts | None
    warm: np.ndarray


#: The validation protocols, named as ``recops.evaluation`` names the splits they
#: mirror (this package does not import it: the evaluation depends on the models).
GLOBAL_TEMPORAL = "global_temporal"
LEAVE_LAST_N_OUT = "leave_last_n_out"

#: Events that form a cold user's history in the validation window (as in the
#: default global temporal split of ``recops.evaluation``).
COLD_HISTORY = 3

#: Candidate weights of the tower score relative to the prior (chosen on validation).
BLEND_GRID: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)


def split_validation(
    data: TrainingData, fraction: float, protocol: str = GLOBAL_TEMPORAL, leave_out: int = 5
) -> tuple[np.ndarray, ValidationWindow]:
    """Indices of the events the towers train on, and the validation window.

    ``protocol`` mirrors the evaluation the model will face: the last ``fraction``
    of the period by time (:data:`GLOBAL_TEMPORAL`), or each user's last
    ``leave_out`` events (:data:`LEAVE_LAST_N_OUT`, see :func:`_leave_last_n_window`).
    """
    if protocol == LEAVE_LAST_N_OUT:
        return _leave_last_n_window(data, leave_out)
    seq = data.sequences
    width = seq.max_history
    start = int(np.quantile(seq.times, 1.0 - fraction, method="higher"))
    before = np.flatnonzero(seq.times < start)
    in_window = np.flatnonzero(seq.times >= start)  # sorted by user, then time
    users, first = np.unique(seq.users[in_window], return_index=True)
    bounds = np.r_[first, len(in_window)]
    now, history, history_times, targets, warm = [], [], [], [], []
    for k in range(len(users)):
        rows = in_window[bounds[k] : bounds[k + 1]]
        first_times = seq.history_times_at(rows[:1])[0]
        hist = np.where(first_times < start, seq.history_at(rows[:1])[0], 0)
        times = first_times
        at = start
        warm.append(bool(hist.any()))
        if not hist.any():
            cold = rows[:COLD_HISTORY]
            hist = np.zeros(width, dtype=np.int64)
            times = np.zeros(width, dtype=np.int64)
            hist[width - len(cold[-width:]) :] = seq.items[cold][-width:]
            times[width - len(cold[-width:]) :] = seq.times[cold][-width:]
            at, rows = int(seq.times[cold[-1]]), rows[COLD_HISTORY:]
        now.append(at)
        history.append(hist)
        history_times.append(times)
        targets.append(np.setdiff1d(seq.items[rows], hist[hist > 0]))
    window = ValidationWindow(
        start,
        users,
        np.asarray(now, dtype=np.int64),
        np.asarray(history, dtype=np.int64).reshape(-1, width),
        np.asarray(history_times, dtype=np.int64).reshape(-1, width),
        targets,
        _counts_before(data, before),
        np.asarray(warm, dtype=bool),
    )
    return before, window


def _leave_last_n_window(data: TrainingData, n: int) -> tuple[np.ndarray, ValidationWindow]:
    """Each user's last ``n`` events as targets, as ``leave_last_n_out`` tests.

    Users with at least ``n + 1`` events are validated: history = their events
    before the held-out ones, ``now`` = the first held-out event's time. The
    towers train on every other event (other users' later events included, the
    protocol's own leak); the counts hold those events and are read causally at
    each ``now``. Every validated user is warm.
    """
    seq = data.sequences
    n_rows = len(seq.items)
    starts = np.flatnonzero(np.r_[True, seq.users[1:] != seq.users[:-1]])
    sizes = np.diff(np.r_[starts, n_rows])
    first_held = (starts + sizes - n)[sizes >= n + 1]
    held = np.zeros(n_rows, dtype=bool)
    held[(first_held[:, None] + np.arange(n)).ravel()] = True
    history = seq.history_at(first_held)
    history_times = seq.history_times_at(first_held)
    targets = [
        np.setdiff1d(seq.items[first : first + n], hist[hist > 0])
        for first, hist in zip(first_held, history, strict=True)
    ]
    train_rows = np.flatnonzero(~held)
    window = ValidationWindow(
        int(seq.times[train_rows].max()) + 1 if len(train_rows) else 0,
        seq.users[first_held],
        seq.times[first_held].astype(np.int64),
        history.astype(np.int64),
        history_times.astype(np.int64),
        targets,
        _counts_before(data, train_rows),
        np.ones(len(first_held), dtype=bool),
    )
    return train_rows, window


def _counts_before(data: TrainingData, rows: np.ndarray) -> TimeCounts | None:
    if data.counts is None:
        return None
    seq = data.sequences
    return build_time_counts(
        seq.items[rows],
        seq.times[rows],
        data.n_items,
        data.counts.windows,
        max_cells=data.counts.cum.size,
        publish_time=data.catalog.publish_time,
    )


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` best scores, best first.

    ``torch.topk``: the blend search runs it hundreds of times over the window's
    users × the catalog, and it is 3× faster than ``np.argpartition`` and a sort
    (ties, as there, in no promised order).
    """
    k = min(k, scores.shape[1])
    return torch.topk(torch.from_numpy(scores), k, dim=1).indices.numpy()


@dataclass(frozen=True)
class ValidationTargets:
    """Each validation user's target items, looked up for a whole score matrix at once.

    The blend search scores every weight pair of every candidate prior: a Python loop
    per user and metric made it most of a small model's training time. Targets are
    kept as sorted keys ``row * n_items + item``, so the hits of a ``users × k`` list
    of items are one ``searchsorted``.
    """

    keys: np.ndarray
    sizes: np.ndarray
    n_items: int

    @classmethod
    def of(cls, targets: Sequence[np.ndarray], n_items: int) -> ValidationTargets:
        """From one array of 0-based item columns per user (empty: no targets)."""
        sizes = np.asarray([len(t) for t in targets], dtype=np.int64)
        rows = np.repeat(np.arange(len(targets), dtype=np.int64), sizes)
        items = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets] or [rows])
        return cls(np.unique(rows * n_items + items), sizes, n_items)

    def hits(self, top: np.ndarray) -> np.ndarray:
        """``hits[u, j]``: whether ``top[u, j]`` is one of user ``u``'s targets."""
        if len(self.keys) == 0:
            return np.zeros(top.shape, dtype=bool)
        query = np.arange(len(top), dtype=np.int64)[:, None] * self.n_items + top
        found = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.asarray(self.keys[found] == query)


# The formulas of recops.evaluation.metrics (ndcg_at_k, recall_at_k), without their
# argument checks, which the blend search would pay for on every weight pair: the
# model layer does not import evaluation (evaluation depends on models).
def _ndcg_at(hits: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k of the hit matrix (rows: users with targets only)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(sizes, k) - 1]
    return np.asarray((hits[:, :k] @ discounts) / ideal, dtype=np.float64)


def _recall_at(hits: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k of the hit matrix (rows: users with targets only)."""
    return np.asarray(hits[:, :k].sum(axis=1) / sizes, dtype=np.float64)


#: Per-user validation scores of each ``TwoTowerConfig.validation_metric``.
VALIDATION_METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, int], np.ndarray], ...]] = {
    "ndcg@20": (_ndcg_at,),
    "ndcg@20+recall@20": (_ndcg_at, _recall_at),
}


@dataclass(frozen=True)
class Blend:
    """One candidate of :func:`validation_blend`: mean score, its standard error, coverage.

    ``ndcg`` is the mean per-user validation score of ``validation_metric``
    (NDCG@20 by default; the name is kept by the stored training summaries).
    """

    ndcg: float
    stderr: float
    tower_weights: tuple[float, float]
    coverage: int
    warm_coverage: int = 0

    @classmethod
    def of(
        cls,
        scores: np.ndarray,
        targets: ValidationTargets,
        k: int,
        pair: tuple[float, float],
        warm: np.ndarray | None = None,
        metric: str = "ndcg@20",
    ) -> Blend:
        """Score the blended ``scores`` of the weight pair ``pair``.

        ``warm`` marks the rows of users with history before the window; their
        lists' coverage is counted apart. ``metric``: a key of :data:`VALIDATION_METRICS`.
        """
        # One top-k serves both the score and coverage: it is the blend search's main cost.
        top = _top_k(scores, k)
        scored = targets.sizes > 0
        hits, sizes = targets.hits(top)[scored], targets.sizes[scored]
        per_user = np.sum([f(hits, sizes, k) for f in VALIDATION_METRICS[metric]], axis=0)
        mean = float(per_user.mean()) if len(per_user) else 0.0
        stderr = float(per_user.std() / np.sqrt(len(per_user))) if len(per_user) > 1 else 0.0
        warm_cov = len(np.unique(top[warm])) if warm is not None else 0
        return cls(mean, stderr, pair, len(np.unique(top)), warm_cov)


def _gather_blends(mine: list[Blend], n: int, world: int) -> list[Blend]:
    """The ``n`` blends of the grid, worker ``r`` having scored those at ``r::world``."""
    fields = [[b.ndcg, b.stderr, *b.tower_weights, b.coverage, b.warm_coverage] for b in mine]
    rows = gather_strided(fields, n, 6, world)
    return [Blend(r[0], r[1], (r[2], r[3]), int(r[4]), int(r[5])) for r in rows]


def _coverage(scores: np.ndarray, k: int) -> int:
    if len(scores) == 0:
        return 0
    return len(np.unique(_top_k(scores, k)))


@torch.no_grad()
def validation_blend(
    net: TwoTowerNet,
    data: TrainingData,
    cfg: TwoTowerConfig,
    window: ValidationWindow,
    k: int = 20,
    prior_net: PriorNet | None = None,
) -> Blend:
    """Best NDCG@k on the validation window over the tower weights of :data:`BLEND_GRID`.

    Scores are ``w(n) * score_scale * user @ item + prior(now)`` with seen items
    excluded, where ``w(n)`` interpolates between a weight for an empty history
    and one for a full one (:func:`~recops.models.two_tower.inference.history_weight`).
    The training loss fits the next event; the evaluation asks for the next weeks
    items, and a new user's three clicks say less than a regular's fifty: the
    weights re-balance the personal and the time-aware parts for both. Only
    weights whose lists cover at least ``cfg.min_coverage_ratio`` times as many
    items as the prior alone are eligible (when any is); among those within
    ``cfg.blend_tolerance`` standard errors of the best NDCG, the weights with the
    widest coverage win.
    The returned NDCG is the best one (it drives early stopping). ``prior_net``
    replaces the network's own prior when given.
    """
    prior_net = prior_net if prior_net is not None else net.prior
    tower, prior = window_scores(net, data, cfg, window, prior_net)
    targets = ValidationTargets.of([t - 1 for t in window.targets], data.n_items)
    if prior_net is None:
        return Blend.of(tower + prior, targets, k, (1.0, 1.0), metric=cfg.validation_metric)
    n_hist = (window.history > 0).sum(axis=1)
    floor = cfg.min_coverage_ratio * _coverage(prior, k)
    warm_floor = cfg.min_coverage_ratio * _coverage(prior[window.warm], k)
    # Data-parallel: each worker scores its share of the grid (the search's main
    # cost) and all of them gather every result, in the grid's order.
    rank, world = data_parallel()
    pairs = list(itertools.product(BLEND_GRID, BLEND_GRID))
    results = []
    for pair in pairs[rank::world]:
        scores = history_weight(n_hist, pair, cfg.max_history)[:, None] * tower + prior
        results.append(Blend.of(scores, targets, k, pair, window.warm, cfg.validation_metric))
    if world > 1:
        results = _gather_blends(results, len(pairs), world)
    eligible = [
        r for r in results if r.coverage >= floor and r.warm_coverage >= warm_floor
    ] or results
    best = max(eligible, key=lambda r: r.ndcg)
    # Among blends statistically tied with the best (the window is small and its
    # best is noisy), the most diverse, most personal one.
    tied = [r for r in eligible if r.ndcg >= best.ndcg - cfg.blend_tolerance * best.stderr]
    chosen = max(tied, key=lambda r: (r.coverage, r.ndcg))
    return Blend(best.ndcg, best.stderr, chosen.tower_weights, chosen.coverage)


@torch.no_grad()
def window_scores(
    net: TwoTowerNet,
    data: TrainingData,
    cfg: TwoTowerConfig,
    window: ValidationWindow,
    prior_net: PriorNet | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The window users' ``(n_users, n_items)`` tower scores and prior (seen items ``-inf``)."""
    was_training = net.training
    net.eval()
    all_items = np.arange(1, data.n_items + 1)
    item_vecs = net.encode_items(
        torch.from_numpy(all_items),
        torch.from_numpy(data.catalog.categories),
        torch.from_numpy(data.catalog.tokens),
    )
    ages = age_hours(window.now, window.history, window.history_times)
    users = torch.from_numpy(window.users) if net.user.users is not None else None
    u = user_vectors(net, data, window.history, ages, users)
    tower = (cfg.score_scale * u @ item_vecs.T).numpy()
    prior = np.zeros_like(tower)
    if window.counts is not None and prior_net is not None:
        for t in np.unique(window.now):
            feats = torch.from_numpy(window.counts.features(all_items, t))
            prior[window.now == t] = prior_net(feats).numpy()
    for row, h in enumerate(window.history):
        prior[row, h[h > 0] - 1] = -np.inf
    net.train(was_training)
    return tower, prior


@dataclass(frozen=True)
class KnnChoice:
    """What :func:`validation_item_knn` measured and chose.

    ``scores`` maps each ``(neighbours, shrinkage, weight)`` tried to its score.
    """

    weight: float
    neighbors: int
    shrink: float
    scores: dict[tuple[int, float, float], float]


def validation_item_knn(
    net: TwoTowerNet,
    data: TrainingData,
    cfg: TwoTowerConfig,
    window: ValidationWindow,
    rows: np.ndarray,
    prior_net: PriorNet | None,
    tower_weights: tuple[float, float],
    k: int = 20,
) -> KnnChoice:
    """The item-item term that validates best: :math:`\\kappa_0` and its similarity.

    The similarity comes from the events ``rows`` (those before the window, as a
    model trained up to it would have them), one per pair of
    :func:`~recops.models.two_tower.item_knn.similarity_grid` (the configured
    neighbours and shrinkage, or their grids); the towers, the prior and their
    blend are the ones already chosen. Each weight of ``cfg.item_knn_weight`` (when
    set) or :data:`~recops.models.two_tower.item_knn.KNN_WEIGHT_GRID` is scored with
    ``cfg.validation_metric``; ties keep the smaller weight, then the earlier pair
    (fewer neighbours, less shrinkage).
    """
    seq = data.sequences
    tower, prior = window_scores(net, data, cfg, window, prior_net)
    n_hist = (window.history > 0).sum(axis=1)
    base = history_weight(n_hist, tower_weights, cfg.max_history)[:, None] * tower + prior
    targets = ValidationTargets.of([t - 1 for t in window.targets], data.n_items)
    weights = KNN_WEIGHT_GRID if cfg.item_knn_weight is None else (cfg.item_knn_weight,)
    scores: dict[tuple[int, float, float], float] = {}
    grid = similarity_grid(data.n_items, cfg.item_knn_neighbors, cfg.item_knn_shrink)
    for neighbors, shrink in grid:
        term = ItemKnnTerm.fit(
            seq.start[rows],
            seq.items[rows] - 1,
            data.n_items,
            neighbors=neighbors,
            shrink=shrink,
            weight=1.0,
            max_history=cfg.max_history,
        )
        active = np.flatnonzero(term.weights(n_hist) > 0)
        sums = term.sums(window.history[active]) * term.weights(n_hist[active])[:, None]
        for weight in weights:
            blended = base.copy()
            blended[active] += weight * sums
            blend = Blend.of(blended, targets, k, tower_weights, metric=cfg.validation_metric)
            scores[(neighbors, shrink, weight)] = blend.ndcg
    order = {key: i for i, key in enumerate(scores)}
    best = max(scores, key=lambda key: (scores[key], -key[2], -order[key]))
    return KnnChoice(best[2], best[0], best[1], scores)
