"""The training loop: multi-task sampled softmax, and the model selection on a time window.

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

The validation window (:mod:`~recops.models.two_tower.validation`: the window, its
metrics and the blend search) scores every epoch; here the loop stops early on it,
then picks on it the prior (the softmax-trained one, or one fitted to a consumption
horizon, ``_choose_horizon``) and the weights of the tower score for short and long
histories, and records these choices in the :class:`TrainingSummary`.
:class:`~recops.models.two_tower.data.TrainingData` is the input.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recops.models.two_tower.config import DAY, TwoTowerConfig
from recops.models.two_tower.data import TrainingData, age_hours, user_vectors
from recops.models.two_tower.distributed import (
    agreed,
    average_gradients,
    broadcast_weights,
    data_parallel,
    mean_over_workers,
)
from recops.models.two_tower.features import TimeCounts
from recops.models.two_tower.item_knn import KNN_NEIGHBOR_GRID, KNN_SHRINK_GRID
from recops.models.two_tower.loss import CandidateLogQ, accidental_hits, sampled_softmax_loss
from recops.models.two_tower.network import PriorNet, TwoTowerNet, sparse_parameters
from recops.models.two_tower.prior import fit_horizon_prior, window_prior
from recops.models.two_tower.validation import (
    ValidationWindow,
    split_validation,
    validation_blend,
    validation_item_knn,
)
from recops.progress_bar import transient_bar


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
    item_knn_weight: float = 0.0
    #: The term's similarity chosen on the window (``None``: the configuration's).
    item_knn_neighbors: int | None = None
    item_knn_shrink: float | None = None
    train_loss: list[float] = field(default_factory=list)
    n_events: int = 0
    seconds: float = 0.0

    def choices(self) -> str:
        """What the validation window chose, in one line for people (``recops train``)."""
        if self.validation_start is None:
            return "no validation window: nothing chosen, every epoch kept"
        if self.prior_window is not None:
            prior = f"recent popularity over {_days(self.prior_window)}"
        elif self.prior_horizon is not None:
            prior = f"popularity fitted to a horizon of {_days(self.prior_horizon)}"
        else:
            prior = "the jointly trained one"
        empty, full = self.tower_weights
        term = "off"
        if self.item_knn_weight > 0:
            term = f"weight {self.item_knn_weight:g}"
            n, shrink = self.item_knn_neighbors, self.item_knn_shrink
            if n is not None and shrink is not None:
                term += f", {n} neighbours, shrinkage {shrink:g}"
        return (
            f"epoch {self.best_epoch}; prior: {prior}; tower weight {empty:g} for an empty "
            f"history, {full:g} for a full one; item-item term for short histories: {term}"
        )


def _days(seconds: int) -> str:
    days = seconds / DAY
    return f"{days:g} day" + ("" if days == 1 else "s")


def item_knn_similarity(cfg: TwoTowerConfig, summary: TrainingSummary) -> tuple[int, float]:
    """The item-item term's neighbours and shrinkage: chosen on the window, configured,
    or (neither: no window, or an artifact older than the choice) the grids' first."""
    neighbors = next(
        n
        for n in (summary.item_knn_neighbors, cfg.item_knn_neighbors, KNN_NEIGHBOR_GRID[0])
        if n is not None
    )
    shrink = next(
        s
        for s in (summary.item_knn_shrink, cfg.item_knn_shrink, KNN_SHRINK_GRID[0])
        if s is not None
    )
    return neighbors, shrink


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
    return transient_bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        enabled=verbose,
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
) -> tuple[PriorNet | None, PriorNet | None]:
    """Pick the prior that validates best: jointly trained, fitted, or a window's counts.

    Candidates: the softmax-trained prior; one fitted to each of
    ``cfg.prior_horizons`` (on the events before the window, refitted on all
    events if it wins); plain recent popularity over each of
    ``cfg.count_windows`` (:func:`~recops.models.two_tower.prior.window_prior`).
    Each is scored with its best blend weights. Returns the prior to serve (refitted
    on every event) and the one that was validated (on the events before the
    window); ``None`` for both when the jointly trained prior wins (or there is no
    prior).
    """
    if data.counts is None or window.counts is None:
        return None, None
    seq = data.sequences
    best = max(summary.validation_ndcg, default=-np.inf)
    choice: tuple[str, int] | None = None
    candidates = [("horizon", h) for h in cfg.prior_horizons]
    candidates += [("window", w) for w in cfg.count_windows if w in data.counts.windows]
    validated: PriorNet | None = None
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
            validated = candidate
    summary.validation_ndcg.append(best)
    if choice is None:
        return None, None
    kind, seconds = choice
    if kind == "window":
        summary.prior_window = seconds
        return window_prior(data.counts, seconds), validated
    summary.prior_horizon = seconds
    end = int(seq.times.max()) + 1
    final = fit_horizon_prior(data.counts, seq.times, data.n_items, seconds, end, cfg.seed)
    return final, validated


def _choose_item_knn(
    net: TwoTowerNet,
    data: TrainingData,
    cfg: TwoTowerConfig,
    rows: np.ndarray,
    window: ValidationWindow,
    prior: PriorNet | None,
    summary: TrainingSummary,
) -> None:
    """Set the summary's item-item weight and similarity from the window.

    See :func:`~recops.models.two_tower.validation.validation_item_knn`; nothing to
    choose when the term is off or the configuration fixes all three.
    """
    fixed = (cfg.item_knn_weight, cfg.item_knn_neighbors, cfg.item_knn_shrink)
    if cfg.item_knn_neighbors == 0 or None not in fixed:
        return  # off, or fixed by the configuration (set in train_network)
    # Data-parallel workers each compute the same (deterministic) choice.
    choice = validation_item_knn(net, data, cfg, window, rows, prior, summary.tower_weights)
    summary.item_knn_weight = choice.weight
    summary.item_knn_neighbors = choice.neighbors
    summary.item_knn_shrink = choice.shrink


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
            rows, window = split_validation(
                data, cfg.validation_fraction, cfg.validation_protocol, cfg.validation_leave_out
            )
            # Too few events before the window, or no target in it: nothing to validate.
            if len(rows) < 2 or not any(len(t) for t in window.targets):
                window = None
        if window is not None:
            summary.validation_start = window.start
            net = _run_epochs(data, cfg, rows, cfg.epochs, window, summary, verbose)
            horizon_prior, validated_prior = _choose_horizon(net, data, cfg, rows, window, summary)
            knn_prior = validated_prior if validated_prior is not None else net.prior
            _choose_item_knn(net, data, cfg, rows, window, knn_prior, summary)
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
    if cfg.item_knn_weight is not None and cfg.item_knn_neighbors != 0:
        summary.item_knn_weight = cfg.item_knn_weight
    net.eval()
    summary.seconds = time.perf_counter() - started
    return net, summary
