"""A softmax (Boltzmann) bandit over the model's candidates, learning each item's CTR online.

The server owns one :class:`SoftmaxBandit` per variant and feeds it the feedback it
joins (impressions from its exposure records, clicks joined to them by request id).
Each item keeps a click and an impression count; its click-through rate has the
posterior mean of a Beta prior with mean ``prior_ctr`` worth ``prior_weight``
impressions (``α₀ = prior_ctr · prior_weight``, ``β₀ = (1 - prior_ctr) · prior_weight``):

``ĉ_i = (α₀ + clicks_i) / (prior_weight + impressions_i)``

and a candidate's score becomes

``s'_i = s_i + bonus · logit(ĉ_i)``

(an item that has earned clicks rises, one shown often without clicks sinks, an
unseen one keeps the prior's constant offset). The slate is then the Plackett–Luce
policy of :mod:`recops.experiments.serving_policy` on ``s'`` — the softmax action
selection of Sutton & Barto, over slates without replacement — with its exact
propensities: the pool, the randomised head and the score-order fill all follow
``s'``. Thompson sampling (drawing each ĉ from its Beta posterior) is left out on
purpose: the probability of its slate has no closed form, and the exposure log needs
exact propensities.

Memory is bounded by the model's catalog: two float arrays of ``n_items``; rows
outside it are refused. The counts are the only state, held by the instance.

References
----------
Sutton, R. S. and Barto, A. G. (2018). Reinforcement Learning: An Introduction,
2nd ed., §2.3 (softmax action selection) and §13.1.
Chapelle, O. and Li, L. (2011). An empirical evaluation of Thompson sampling.
NeurIPS 24 (Beta priors on display-advertising CTR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recops.experiments.serving_policy import PlackettLuceServing


@dataclass(frozen=True)
class SoftmaxBandit(PlackettLuceServing):
    """Plackett–Luce over model score plus a per-item CTR bonus learned from feedback.

    Parameters
    ----------
    n_items:
        Rows of the model's catalog; counts are kept for rows ``0..n_items-1``.
    temperature:
        ``τ > 0`` of the softmax over ``s'``.
    pool, explore_slots:
        As for :class:`~recops.experiments.serving_policy.PlackettLuceServing`.
    prior_ctr:
        Prior mean CTR in (0, 1).
    prior_weight:
        Prior strength in impressions, > 0.
    bonus:
        Weight ``≥ 0`` of ``logit(ĉ)`` in the score (0: the plain Plackett–Luce policy).
    """

    kind: ClassVar[str] = "softmax_bandit"
    n_items: int = field(kw_only=True)
    temperature: float = 1.0
    pool: int = 20
    explore_slots: int = 3
    prior_ctr: float = 0.05
    prior_weight: float = 20.0
    bonus: float = 1.0
    clicks: np.ndarray = field(init=False, repr=False, compare=False)
    impressions: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.n_items
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"`n_items` must be a positive int (got {n!r})")
        if not _is_real(self.prior_ctr) or not 0.0 < self.prior_ctr < 1.0:
            raise ValueError(f"`prior_ctr` must be a float in (0, 1) (got {self.prior_ctr!r})")
        if not _is_real(self.prior_weight) or not 0.0 < self.prior_weight < math.inf:
            raise ValueError(
                f"`prior_weight` must be a positive finite float (got {self.prior_weight!r})"
            )
        if not _is_real(self.bonus) or not 0.0 <= self.bonus < math.inf:
            raise ValueError(f"`bonus` must be a finite float >= 0 (got {self.bonus!r})")
        # Frozen for its parameters; the counts are mutable arrays, filled by `update`.
        object.__setattr__(self, "clicks", np.zeros(int(n)))
        object.__setattr__(self, "impressions", np.zeros(int(n)))

    def update(self, item_rows: object, shown: object, clicked: object) -> None:
        """Add feedback: for each row, impressions ``shown`` and clicks ``clicked``.

        Parameters
        ----------
        item_rows:
            Catalog rows, shape ``(N,)``; a row may repeat.
        shown, clicked:
            Non-negative counts (or booleans) per entry of ``item_rows``, or scalars.
            Impressions and clicks may arrive in separate calls (a click is joined to
            its exposure later); a click beyond an item's impressions counts only once
            its impression has (see :meth:`posterior_ctr`).
        """
        rows = _rows("item_rows", item_rows, self.n_items)
        add_shown = _counts("shown", shown, rows.shape)
        add_clicked = _counts("clicked", clicked, rows.shape)
        np.add.at(self.impressions, rows, add_shown)
        np.add.at(self.clicks, rows, add_clicked)

    def posterior_ctr(self, rows: object) -> np.ndarray:
        """``ĉ = (α₀ + min(clicks, impressions)) / (prior_weight + impressions)`` of ``rows``."""
        r = _rows("rows", rows, self.n_items)
        shown = self.impressions[r]
        clicks = np.minimum(self.clicks[r], shown)
        return (self.prior_ctr * self.prior_weight + clicks) / (self.prior_weight + shown)

    def spec(self) -> dict[str, Any]:
        """The spec dict (without ``n_items``, which comes from the model, not the config)."""
        params = super().spec()
        del params["n_items"]
        return params

    def grow(self, n_items: int) -> None:
        """Keep counts for ``n_items`` rows: the model gained items (appended rows).

        The counts so far are copied into larger arrays; the new rows start from the
        prior. An update racing with the copy may be lost: the server runs its
        updates and its growths one at a time.
        """
        if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < self.n_items:
            raise ValueError(f"`n_items` must be an int >= {self.n_items} (got {n_items!r})")
        for name in ("clicks", "impressions"):
            counts = np.zeros(n_items)
            counts[: self.n_items] = getattr(self, name)
            object.__setattr__(self, name, counts)
        object.__setattr__(self, "n_items", n_items)

    def reset(self) -> None:
        """Forget all feedback."""
        self.clicks[:] = 0.0
        self.impressions[:] = 0.0

    def _adjusted(self, scores: np.ndarray, rows: object | None) -> np.ndarray:
        if rows is None:
            raise ValueError(
                "`rows` (the candidates' catalog rows) is required by the softmax bandit"
            )
        ctr = self.posterior_ctr(rows)
        if ctr.shape != scores.shape:
            raise ValueError(
                f"`rows` must have one entry per candidate score: shape {scores.shape} "
                f"(got {ctr.shape})"
            )
        return scores + self.bonus * np.log(ctr / (1.0 - ctr))


def _is_real(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _rows(name: str, values: object, n_items: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(
            f"`{name}` must be a 1-d array of integer catalog rows "
            f"(got shape {arr.shape}, dtype {arr.dtype})"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= n_items):
        bad = int(np.flatnonzero((arr < 0) | (arr >= n_items))[0])
        raise ValueError(
            f"`{name}` must be rows of the model's catalog, 0..{n_items - 1} "
            f"(got {int(arr[bad])} at index {bad})"
        )
    return arr.astype(np.int64, copy=False)


def _counts(name: str, values: object, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(
            f"`{name}` must be a scalar or have the shape of `item_rows` {shape} (got {arr.shape})"
        ) from None
    if not np.all(np.isfinite(arr) & (arr >= 0)):
        raise ValueError(f"`{name}` must hold finite counts >= 0")
    return arr
