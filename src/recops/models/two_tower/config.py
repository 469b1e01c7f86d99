"""Hyper-parameters of the two-tower model, validated by pydantic.

Every field has a default that trains a reasonable model on a MovieLens-sized
dataset in well under two minutes on two CPU cores. An invalid value raises a
:class:`pydantic.ValidationError` (a ``ValueError``) that names the field, what
was expected and what came.
"""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

DAY = 86_400

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
    blend_tolerance:
        Blends whose validation NDCG@20 is within this many standard errors of
        the best are considered tied; the one with the widest coverage wins. 0
        (default) takes the best NDCG: on ML-100K, 0.5 traded too much accuracy
        in the temporal split for coverage.
    min_coverage_ratio:
        When the validation window picks the tower weights, only weights whose
        top-20 lists cover at least this many times the items the prior alone
        covers are eligible (if none does, all are): the model must stay
        personal, not collapse into a popularity list. 0 disables the constraint.
    prior_max_cells:
        Memory cap (items × time buckets) of the cumulative count table.
    task_weights:
        Weight of each task's loss: ``user`` (history → next item), ``query`` (title
        words → item), ``category`` (category → item), ``similar`` (item → next item).
    validation_fraction:
        The most recent share of the training period (by time) used to pick the
        epoch (early stopping); 0 disables early stopping.
    patience:
        Epochs without improvement on the validation window before stopping.
    refit_full:
        After early stopping picked the epoch count, train again on all data
        (validation window included) for that many epochs. Off by default: it
        doubles the training time, while the prior's counts and every query's
        history already include the window's events.
    seed:
        Seeds parameter initialisation, shuffling and negative sampling.
    num_threads:
        Torch intra-op threads. 1 by default: on a small shared machine, more
        threads than idle cores make torch's spinning workers several times slower.
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
    item_id_dropout: float = Field(0.2, ge=0.0, le=1.0)
    user_id_embedding: bool = False
    user_id_dropout: float = Field(0.5, ge=0.0, le=1.0)
    time_prior: bool = True
    prior_windows: tuple[int, ...] = tuple(d * DAY for d in (1, 3, 7, 14, 30, 90, 365, 730))
    prior_horizons: tuple[int, ...] = tuple(d * DAY for d in (1, 7, 30, 180, 365, 730))
    blend_tolerance: float = Field(0.0, ge=0.0, le=10.0)
    min_coverage_ratio: float = Field(2.0, ge=0.0, le=100.0)
    prior_group_size: int = Field(32, ge=1, le=65_536)
    prior_max_cells: int = Field(20_000_000, ge=1_000, le=1_000_000_000)
    task_weights: dict[str, float] = Field(
        default_factory=lambda: {"user": 1.0, "query": 0.1, "category": 0.1, "similar": 0.1}
    )
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    patience: int = Field(2, ge=1, le=100)
    refit_full: bool = False
    seed: int = Field(0, ge=0, le=2**31 - 1)
    num_threads: int = Field(1, ge=1, le=256)

    @field_validator("prior_windows", "prior_horizons")
    @classmethod
    def _positive_seconds(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
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
        return self

    @property
    def score_scale(self) -> float:
        """Multiplier of the cosine similarity in every score (``1 / temperature``)."""
        return 1.0 / self.temperature
