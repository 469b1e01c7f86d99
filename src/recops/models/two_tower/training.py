"""The training loop: multi-task sampled softmax, early stopping on a time window.

Every batch draws ``batch_size`` training events; their items (plus optional
uniform negatives) form the candidate set shared by all four tasks:

* **user**: the user's history before the event → the event's item (or one of
  the user's next ``positive_window`` items), with the time-aware prior of every
  candidate added to the logit. Rows come in time-contiguous groups sharing one
  prior evaluation at the group's earliest time, so the prior learns, causally,
  how recent popularity and age predict the next event;
* **similar**: the previous item of the same user → the event's item;
* **query**: a random half of the item's title words → the item;
* **category**: one of the item's categories → the item (candidates sharing the
  category are masked as accidental hits).

After early stopping on the validation window, the window also picks the prior
(the softmax-trained one, or one fitted to a consumption horizon) and the weights
of the tower score for short and long histories.

Inside a ``torch.distributed`` process group (Ray Train, see ``ray_train``) the
loop is data-parallel: every worker holds the same network and draws the same
batch order, computes the loss of its shard of each global batch, and the
gradients are averaged across workers before every step
(:mod:`~recops.models.two_tower.distributed`), so the number of steps and the global
batch size are those of one process. The validation's blend search is split between
the workers too; every worker then holds every result, so all of them take the same
early-stopping decisions.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.distributed import (
    agreed,
    average_gradients,
    broadcast_weights,
    data_parallel,
    gather_strided,
    mean_over_workers,
)
from recops.models.two_tower.features import (
    CatalogFeatures,
    Sequences,
    TimeCounts,
    build_time_counts,
)
from recops.models.two_tower.inference import history_weight
from recops.models.two_tower.loss import CandidateLogQ, accidental_hits, sampled_softmax_loss
from recops.models.two_tower.network import PriorNet, TwoTowerNet, sparse_parameters
from recops.models.two_tower.prior import fit_horizon_prior, window_prior

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class TrainingData:
    """Everything the loop needs, already indexed (see ``features``).

    Parameters
    ----------
    sequences:
        Every training event with the user's history before it.
    catalog:
        Content of items ``1..n_items`` (row ``i`` is item ``i + 1``).
    counts:
        Causal popularity counts, or ``None`` when the prior is disabled.
    n_items, n_users, n_categories:
        Vocabulary sizes.
    item_weights:
        ``(n_items + 1,)`` weight of a click on each item in the user task (the
        exposure correction, see ``TwoTowerConfig.exposure_debias``), or ``None``.
    """

    sequences: Sequences
    catalog: CatalogFeatures
    counts: TimeCounts | None
    n_items: int
    n_users: int
    n_categories: int
    item_weights: np.ndarray | None = None

    def item_categories(self, items: np.ndarray) -> np.ndarray:
        """Padded category indices of item indices (item 0 has none)."""
        return _rows(self.catalog.categories, items)

    def item_tokens(self, items: np.ndarray) -> np.ndarray:
        """Padded token ids of item indices (item 0 has none)."""
        return _rows(self.catalog.tokens, items)


def _rows(table: np.ndarray, items: np.ndarray) -> np.ndarray:
    # Row j - 1 holds item j; item 0 (padding) maps to an all-zero row.
    padded = np.vstack([np.zeros((1, table.shape[1]), dtype=table.dtype), table])
    return padded[items]


@dataclass
class TrainingSummary:
    """What happened during ``fit``, stored in the artifact's ``config.json``."""

    epochs_run: int = 0
    best_epoch: int = 0
    validation_start: int | None = None
    validation_ndcg: list[float] = field(default_factory=list)
    tower_weights: tuple[float, float] = (1.0, 1.0)
    prior_horizon: int | None = None
    prior_window: int | None = None
    train_loss: list[float] = field(default_factory=list)
    n_events: int = 0
    seconds: float = 0.0


@contextlib.contextmanager
def deterministic_torch(seed: int, num_threads: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and a thread count; restore after."""
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def age_hours(now: np.ndarray, history: np.ndarray, history_times: np.ndarray) -> np.ndarray:
    """Hours between each history event and ``now`` (0 on padding), float32."""
    hours = (now[:, None] - history_times) / SECONDS_PER_HOUR
    return np.where(history > 0, np.maximum(hours, 0.0), 0.0).astype(np.float32)


def user_vectors(
    net: TwoTowerNet,
    data: TrainingData,
    history: np.ndarray,
    ages: np.ndarray,
    users: torch.Tensor | None,
    id_dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """User vectors of right-aligned ``(n, L)`` item histories (0 = padding).

    Every distinct item of the batch is read once (:meth:`TwoTowerNet.history_vectors`:
    id row plus content) and gathered into the ``(n, L, dim)`` history. With ``rng``,
    each distinct item's id part is dropped with probability ``id_dropout``.
    """
    unique, inverse = np.unique(history, return_inverse=True)
    hide = None
    if rng is not None and id_dropout > 0:
        hide = torch.from_numpy(rng.random(len(unique)) < id_dropout)
    rows = net.history_vectors(
        torch.from_numpy(unique),
        torch.from_numpy(data.item_categories(unique)),
        torch.from_numpy(data.item_tokens(unique)),
        hide,
    )
    emb = rows[torch.from_numpy(inverse.reshape(history.shape))]
    return net.user(emb, torch.from_numpy(history > 0), torch.from_numpy(ages), users)


def prior_logits(
    net: TwoTowerNet, counts: TimeCounts | None, items: np.ndarray, now: np.ndarray
) -> torch.Tensor | None:
    """``item_prior`` of ``items`` at times ``now`` (broadcast), or None without prior."""
    if counts is None or net.prior is None:
        return None
    return net.prior(torch.from_numpy(counts.features(items, now)))


class _BatchLoss:
    """Computes the multi-task loss of one batch of events."""

    def __init__(
        self,
        net: TwoTowerNet,
        data: TrainingData,
        cfg: TwoTowerConfig,
        rng: np.random.Generator,
        rows: np.ndarray,
        batch_size: int | None = None,
    ) -> None:
        """``batch_size``: positives per call, for logQ (default ``cfg.batch_size``)."""
        self.net, self.data, self.cfg, self.rng = net, data, cfg, rng
        seq = data.sequences
        # Positives are drawn among the training rows only (never from validation).
        self.last = seq.last_rows(rows)
        freq = np.bincount(seq.items[rows], minlength=data.n_items + 1).astype(np.float64)
        freq[0] = 0.0
        self.logq = CandidateLogQ(
            freq / freq.sum(), batch_size or cfg.batch_size, cfg.uniform_negatives
        )
        self.has_tokens = bool((data.catalog.tokens > 0).any())
        self.has_categories = bool((data.catalog.categories > 0).any())
        self.membership = _category_membership(data) if self.has_categories else None

    def __call__(self, rows: np.ndarray, groups: np.ndarray) -> torch.Tensor:
        """The loss of the events ``rows``; ``groups`` their time groups (prior ``now``)."""
        cfg, data, seq, net = self.cfg, self.data, self.data.sequences, self.net
        pos = seq.items[seq.future_rows(rows, cfg.positive_window, self.rng, self.last)]
        cand = np.concatenate(
            [pos, self.rng.integers(1, data.n_items + 1, size=cfg.uniform_negatives)]
        )
        ids = np.where(self.rng.random(len(cand)) < cfg.item_id_dropout, 0, cand)
        item_vecs = net.encode_items(
            torch.from_numpy(ids),
            torch.from_numpy(data.item_categories(cand)),
            torch.from_numpy(data.item_tokens(cand)),
        )
        log_q = torch.from_numpy(self.logq.log_q(cand)) if cfg.logq_correction else None
        cand_t, pos_t = torch.from_numpy(cand), torch.from_numpy(pos)
        mask = accidental_hits(pos_t, cand_t) if cfg.mask_accidental_hits else None
        weights = cfg.task_weights
        loss = weights["user"] * self._user_loss(rows, groups, cand, item_vecs, log_q, mask)
        if weights["similar"] > 0:
            loss = loss + weights["similar"] * self._similar_loss(rows, pos, item_vecs, log_q, mask)
        if weights["query"] > 0 and self.has_tokens:
            loss = loss + weights["query"] * self._query_loss(pos, item_vecs, log_q, mask)
        if weights["category"] > 0 and self.has_categories:
            loss = loss + weights["category"] * self._category_loss(pos, cand, item_vecs, log_q)
        return loss

    def _user_loss(
        self,
        rows: np.ndarray,
        groups: np.ndarray,
        cand: np.ndarray,
        item_vecs: torch.Tensor,
        log_q: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        seq, net, cfg = self.data.sequences, self.net, self.cfg
        history = seq.history_at(rows)
        ages = age_hours(seq.times[rows], history, seq.history_times_at(rows))
        users = None
        if net.user.users is not None:
            keep = self.rng.random(len(rows)) >= cfg.user_id_dropout
            users = torch.from_numpy(np.where(keep, seq.users[rows], 0))
        u = user_vectors(net, self.data, history, ages, users, cfg.item_id_dropout, self.rng)
        logits = cfg.score_scale * u @ item_vecs.T
        # One "now" per time group of the batch (its earliest event: causal for all).
        group_now, row_group = prior_times(seq.times[rows], groups)
        prior = prior_logits(net, self.data.counts, cand[None, :], group_now[:, None])
        if prior is not None:
            logits = logits + prior[torch.from_numpy(row_group)]
        weights = None
        if self.data.item_weights is not None:
            weights = torch.from_numpy(self.data.item_weights[cand[: len(rows)]])
        return sampled_softmax_loss(logits, log_q, mask, weights)

    def _similar_loss(
        self,
        rows: np.ndarray,
        pos: np.ndarray,
        item_vecs: torch.Tensor,
        log_q: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        prev = self.data.sequences.previous_item(rows)
        valid = (prev > 0) & (prev != pos)
        src = self.net.encode_similar(
            torch.from_numpy(prev),
            torch.from_numpy(self.data.item_categories(prev)),
            torch.from_numpy(self.data.item_tokens(prev)),
        )
        logits = self.cfg.score_scale * src @ item_vecs.T
        return sampled_softmax_loss(logits, log_q, mask, torch.from_numpy(valid.astype(np.float32)))

    def _query_loss(
        self,
        pos: np.ndarray,
        item_vecs: torch.Tensor,
        log_q: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        tokens = self.data.item_tokens(pos)
        # A query is a random half of the title's words: search must work on fragments.
        tokens = np.where(self.rng.random(tokens.shape) < 0.5, tokens, 0)
        valid = (tokens > 0).any(axis=1)
        q = self.net.encode_queries(torch.from_numpy(tokens))
        logits = self.cfg.score_scale * q @ item_vecs.T
        return sampled_softmax_loss(logits, log_q, mask, torch.from_numpy(valid.astype(np.float32)))

    def _category_loss(
        self,
        pos: np.ndarray,
        cand: np.ndarray,
        item_vecs: torch.Tensor,
        log_q: torch.Tensor | None,
    ) -> torch.Tensor:
        cats = self.data.item_categories(pos)
        n_cats = (cats > 0).sum(axis=1)
        pick = (self.rng.random(len(pos)) * np.maximum(n_cats, 1)).astype(np.int64)
        chosen = cats[np.arange(len(pos)), pick]
        chosen_t = torch.from_numpy(chosen)
        # Every other candidate in the chosen category is also a positive: mask it.
        assert self.membership is not None
        shares = self.membership[torch.from_numpy(cand)][:, chosen_t].T
        own = torch.zeros_like(shares)
        own[torch.arange(len(pos)), torch.arange(len(pos))] = True
        c = self.net.encode_categories(chosen_t.clamp(min=0))
        logits = self.cfg.score_scale * c @ item_vecs.T
        weights = torch.from_numpy((chosen > 0).astype(np.float32))
        return sampled_softmax_loss(logits, log_q, shares & ~own, weights)


def _category_membership(data: TrainingData) -> torch.Tensor:
    """``(n_items + 1, n_categories + 1)`` bool: item ``j`` is in category ``c``."""
    member = np.zeros((data.n_items + 1, data.n_categories + 1), dtype=bool)
    rows = np.repeat(np.arange(1, data.n_items + 1), data.catalog.categories.shape[1])
    member[rows, data.catalog.categories.ravel()] = True
    member[:, 0] = False
    return torch.from_numpy(member)


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


#: Events that form a cold user's history in the validation window (as in the
#: default global temporal split of ``recops.evaluation``).
COLD_HISTORY = 3

#: Candidate weights of the tower score relative to the prior (chosen on validation).
BLEND_GRID: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)


def split_validation(data: TrainingData, fraction: float) -> tuple[np.ndarray, ValidationWindow]:
    """Indices of training events before the window, and the window itself."""
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
    """Column indices of each row's ``k`` best scores, best first."""
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


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
    return len(np.unique(np.argpartition(-scores, k - 1, axis=1)[:, :k]))


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
    net.train()
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


def build_network(data: TrainingData, cfg: TwoTowerConfig) -> TwoTowerNet:
    """A freshly initialised network for ``data`` (seeded by the caller)."""
    return TwoTowerNet(
        n_items=data.n_items,
        n_users=data.n_users if cfg.user_id_embedding else 0,
        n_categories=data.n_categories,
        text_buckets=cfg.text_buckets,
        max_history=cfg.max_history,
        dim=cfg.dim,
        hidden=cfg.hidden,
        n_prior_features=data.counts.n_features if data.counts is not None else 0,
        sparse=cfg.sparse_for(data.n_items),
    )


def time_local_order(
    rows: np.ndarray, times: np.ndarray, group_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled order of ``rows`` made of time-contiguous groups of ``group_size``.

    Rows are sorted by time, cut into groups at a random offset (so group
    boundaries move between epochs) and the groups are shuffled. The prior of a
    group is then computed once, at the group's earliest time, instead of once per
    row: ``batch_size / group_size`` times fewer prior evaluations, while a batch
    still mixes many moments of the training period.

    Returns
    -------
    order, groups:
        The rows in training order, and the group of each (an id per group). A
        group may straddle two batches and the first one is cut short, so a batch
        must find its groups from ``groups`` (:func:`prior_times`), not from
        positions.
    """
    by_time = rows[np.argsort(times[rows], kind="stable")]
    offset = int(rng.integers(group_size)) if group_size > 1 else 0
    starts = np.r_[0, np.arange(offset or group_size, len(by_time), group_size)]
    sizes = np.diff(np.r_[starts, len(by_time)])
    starts, sizes = starts[sizes > 0], sizes[sizes > 0]
    shuffled = rng.permutation(len(starts))
    ids = np.repeat(shuffled, sizes[shuffled])
    # Row k of the output is row (k - where its group starts in the output) of the
    # group's run in time order.
    out_starts = np.r_[0, np.cumsum(sizes[shuffled])[:-1]]
    position = np.arange(len(by_time)) + np.repeat(starts[shuffled] - out_starts, sizes[shuffled])
    return by_time[position], ids


def prior_times(times: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The prior's ``now`` per group of a batch, and each row's group among them.

    ``now`` of a group is the earliest time of its rows in the batch: every row of
    the group is at or after it (causal), and no row gets another group's time.
    """
    unique, row_group = np.unique(groups, return_inverse=True)
    group_now = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(group_now, row_group, np.asarray(times, dtype=np.int64))
    return group_now, row_group.astype(np.int64)


#: Learning rate of ``finetune_epochs`` relative to ``learning_rate``.
FINETUNE_LR_SCALE = 0.1


class _Optimizers:
    """Adam on the dense weights; on sparse embedding tables, row-wise (lazy) Adam.

    ``torch.optim.SparseAdam`` updates only the rows a batch touched (and their
    moment estimates), so a step costs the batch's rows, not the catalog's: with
    dense Adam, every step rewrote all ``n_items × dim`` entries of both id tables
    and their two moments.
    """

    def __init__(self, net: TwoTowerNet, cfg: TwoTowerConfig, lr_scale: float = 1.0) -> None:
        sparse, dense = sparse_parameters(net)
        lr = cfg.learning_rate * lr_scale
        self.parts: list[torch.optim.Optimizer] = [
            torch.optim.Adam(dense, lr=lr, weight_decay=cfg.weight_decay, foreach=True)
        ]
        if sparse:
            self.parts.append(torch.optim.SparseAdam(sparse, lr=lr))

    def zero_grad(self) -> None:
        for part in self.parts:
            part.zero_grad()

    def step(self) -> None:
        for part in self.parts:
            part.step()


def trained_items(data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """``(n_items + 1,)`` bool: items with an event among ``rows`` (index 0: padding)."""
    seen = np.bincount(data.sequences.items[rows], minlength=data.n_items + 1) > 0
    seen[0] = False
    return seen


def _progress(verbose: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not verbose,
        transient=True,
    )


def _run_epochs(
    data: TrainingData,
    cfg: TwoTowerConfig,
    rows: np.ndarray,
    epochs: int,
    window: ValidationWindow | None,
    summary: TrainingSummary,
    verbose: bool,
    net: TwoTowerNet | None = None,
) -> TwoTowerNet:
    """Train a network for up to ``epochs`` epochs on events ``rows``.

    A new network unless ``net`` is given (then it continues from its weights,
    with a fresh optimiser). With a validation window, stops after ``patience``
    epochs without a better NDCG@20 and returns the best network seen.
    """
    torch.manual_seed(cfg.seed)
    seed = cfg.seed + (0 if net is None else 1)
    rng = np.random.default_rng(seed)
    fresh = net is None
    if net is None:
        net = build_network(data, cfg)
    net.train()
    # Only items with an event among the rows trained on get (and keep) an id row.
    net.has_id.copy_(torch.from_numpy(trained_items(data, rows)))
    rank, world = data_parallel()
    sample_rng = rng
    if world > 1:
        # Same seed, same initial weights on every worker; rank 0's are made
        # authoritative anyway. ``rng`` draws the batch order, identical everywhere;
        # the loss's sampling (negatives, dropout) draws per shard, so its own stream
        # per rank (with one worker, the embedded stream: the same run).
        broadcast_weights(net)
        sample_rng = np.random.default_rng([seed, rank])
    batch_loss = _BatchLoss(net, data, cfg, sample_rng, rows, -(-cfg.batch_size // world))
    # Continuing a trained network: smaller steps, so it keeps what validated best.
    optim = _Optimizers(net, cfg, 1.0 if fresh else FINETUNE_LR_SCALE)
    best, best_state, stale = -np.inf, copy.deepcopy(net.state_dict()), 0
    n_batches = -(-len(rows) // cfg.batch_size)
    with _progress(verbose) as progress:
        task = progress.add_task("two-tower", total=epochs * n_batches, info="")
        for epoch in range(1, epochs + 1):
            order, groups = time_local_order(rows, data.sequences.times, cfg.prior_group_size, rng)
            losses = []
            for b in range(n_batches):
                window_rows = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
                batch = order[window_rows]
                if len(batch) < 2 * world:
                    continue
                # This worker's contiguous shard of the global batch (all of it when
                # alone): whole time groups mostly, so each worker also evaluates only
                # about 1 / world of the batch's priors.
                shard = slice(rank * len(batch) // world, (rank + 1) * len(batch) // world)
                loss = batch_loss(batch[shard], groups[window_rows][shard])
                optim.zero_grad()
                loss.backward()
                if world > 1:
                    average_gradients(net, world)
                optim.step()
                losses.append(float(loss.detach()))
                progress.advance(task)
            epoch_loss = float(np.mean(losses)) if losses else float("nan")
            summary.train_loss.append(mean_over_workers(epoch_loss, world))
            summary.epochs_run = epoch
            info = f"epoch {epoch} loss {summary.train_loss[-1]:.3f}"
            if window is None:
                progress.update(task, info=info)
                continue
            blend = validation_blend(net, data, cfg, window)
            ndcg = agreed(blend.ndcg, world)
            summary.validation_ndcg.append(ndcg)
            progress.update(
                task,
                info=f"{info} val {cfg.validation_metric} {ndcg:.4f} "
                f"(tower weights {blend.tower_weights})",
            )
            if ndcg > best:
                best, best_state, stale = ndcg, copy.deepcopy(net.state_dict()), 0
                summary.best_epoch, summary.tower_weights = epoch, blend.tower_weights
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
    if window is not None:
        net.load_state_dict(best_state)
    else:
        summary.best_epoch = summary.epochs_run
    return net


def time_steps(data: TrainingData, cfg: TwoTowerConfig, n_steps: int) -> list[float]:
    """Seconds of each of the first ``n_steps`` optimisation steps of an epoch.

    The same batches, loss and optimiser as :func:`train_network` (without the
    validation window), for measuring the cost of an epoch at scale without
    running it to the end.
    """
    rows = np.arange(len(data.sequences.items))
    with deterministic_torch(cfg.seed, cfg.num_threads):
        rng = np.random.default_rng(cfg.seed)
        net = build_network(data, cfg)
        net.has_id.copy_(torch.from_numpy(trained_items(data, rows)))
        batch_loss = _BatchLoss(net, data, cfg, rng, rows)
        optim = _Optimizers(net, cfg)
        order, groups = time_local_order(rows, data.sequences.times, cfg.prior_group_size, rng)
        seconds = []
        for b in range(min(n_steps, -(-len(rows) // cfg.batch_size))):
            started = time.perf_counter()
            part = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            loss = batch_loss(order[part], groups[part])
            optim.zero_grad()
            loss.backward()
            optim.step()
            seconds.append(time.perf_counter() - started)
    return seconds


def _choose_horizon(
    net: TwoTowerNet,
    data: TrainingData,
    cfg: TwoTowerConfig,
    rows: np.ndarray,
    window: ValidationWindow,
    summary: TrainingSummary,
) -> PriorNet | None:
    """Pick the prior that validates best: jointly trained, fitted, or a window's counts.

    Candidates: the softmax-trained prior; one fitted to each of
    ``cfg.prior_horizons`` (on the events before the window, refitted on all
    events if it wins); plain recent popularity over each of
    ``cfg.count_windows`` (:func:`~recops.models.two_tower.prior.window_prior`).
    Each is scored with its best blend weights. Returns ``None`` when the jointly
    trained prior wins (or there is no prior).
    """
    if data.counts is None or window.counts is None:
        return None
    seq = data.sequences
    best = max(summary.validation_ndcg, default=-np.inf)
    choice: tuple[str, int] | None = None
    candidates = [("horizon", h) for h in cfg.prior_horizons]
    candidates += [("window", w) for w in cfg.count_windows if w in data.counts.windows]
    for kind, seconds in candidates:
        if kind == "horizon":
            candidate = fit_horizon_prior(
                window.counts, seq.times[rows], data.n_items, seconds, window.start, cfg.seed
            )
        else:
            candidate = window_prior(window.counts, seconds)
        blend = validation_blend(net, data, cfg, window, prior_net=candidate)
        if blend.ndcg > best:
            best, choice, summary.tower_weights = blend.ndcg, (kind, seconds), blend.tower_weights
    summary.validation_ndcg.append(best)
    if choice is None:
        return None
    kind, seconds = choice
    if kind == "window":
        summary.prior_window = seconds
        return window_prior(data.counts, seconds)
    summary.prior_horizon = seconds
    end = int(seq.times.max()) + 1
    return fit_horizon_prior(data.counts, seq.times, data.n_items, seconds, end, cfg.seed)


def train_network(
    data: TrainingData, cfg: TwoTowerConfig, verbose: bool = False
) -> tuple[TwoTowerNet, TrainingSummary]:
    """Fit the network: early stopping on the time window, then optional full refit."""
    started = time.perf_counter()
    summary = TrainingSummary(n_events=len(data.sequences.items))
    all_rows = np.arange(len(data.sequences.items))
    with deterministic_torch(cfg.seed, cfg.num_threads):
        window = None
        if cfg.validation_fraction > 0 and len(np.unique(data.sequences.times)) > 1:
            rows, window = split_validation(data, cfg.validation_fraction)
            # Too few events before the window, or no target in it: nothing to validate.
            if len(rows) < 2 or not any(len(t) for t in window.targets):
                window = None
        if window is not None:
            summary.validation_start = window.start
            net = _run_epochs(data, cfg, rows, cfg.epochs, window, summary, verbose)
            horizon_prior = _choose_horizon(net, data, cfg, rows, window, summary)
            if cfg.refit_full:
                refit = TrainingSummary()
                net = _run_epochs(data, cfg, all_rows, summary.best_epoch, None, refit, verbose)
                summary.train_loss += refit.train_loss
            elif cfg.finetune_epochs:
                # The window's events are the users' newest: without this, items first
                # seen there would have no trained id row (content only) and the towers
                # would not know the latest co-occurrences.
                tuned = TrainingSummary()
                net = _run_epochs(
                    data, cfg, all_rows, cfg.finetune_epochs, None, tuned, verbose, net=net
                )
                summary.train_loss += tuned.train_loss
            if horizon_prior is not None:
                net.prior = horizon_prior
        else:
            net = _run_epochs(data, cfg, all_rows, cfg.epochs, None, summary, verbose)
    net.eval()
    summary.seconds = time.perf_counter() - started
    return net, summary
