"""Slate policies that the world can be run under, and the built-in logging policy.

The built-in policy mixes recent popularity with uniform exploration. It is
deliberately *not* the truth (it ignores who the user is), and stochastic, so that
the logs it produces carry the exploration off-policy estimators need. Any object
that follows :class:`SlatePolicy` can be run instead, e.g. to get the on-policy
truth of a policy that an off-policy estimator evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from scipy.special import gammaln


@dataclass(frozen=True)
class RequestBatch:
    """Requests served together, as a policy sees them.

    Parameters
    ----------
    time:
        ``(R,)`` int64 unix seconds.
    user:
        ``(R,)`` int64 user indices.
    lo, hi:
        ``(R,)`` the candidates of request ``r`` are the items ``lo[r] .. hi[r] - 1``
        (those available at ``time[r]``; never empty).
    recent_clicks:
        ``(n_items,)`` clicks per item over the world's popularity window.
    """

    time: np.ndarray
    user: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    recent_clicks: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time)
        if not len(self.user) == len(self.lo) == len(self.hi) == n:
            raise ValueError(
                "RequestBatch: time, user, lo and hi must have the same length (got "
                f"{n}, {len(self.user)}, {len(self.lo)}, {len(self.hi)})"
            )
        if n and (self.hi - self.lo).min() < 1:
            raise ValueError("RequestBatch: every request needs a candidate (got hi <= lo)")

    @property
    def n_candidates(self) -> np.ndarray:
        """``(R,)`` number of candidate items per request."""
        return self.hi - self.lo

    def candidate_span(self) -> tuple[np.ndarray, np.ndarray]:
        """All item indices any request may use, and the ``(R, span)`` mask of who may."""
        span = np.arange(self.lo.min(), self.hi.max(), dtype=np.int64)
        inside = (span[None, :] >= self.lo[:, None]) & (span[None, :] < self.hi[:, None])
        return span, inside


class SlateDecision(NamedTuple):
    """Slates chosen for a batch of requests, with the exact policy probabilities.

    Attributes
    ----------
    items:
        ``(R, slate_size)`` item indices, ``-1`` after the end of a slate that is
        shorter because fewer items were available.
    propensity:
        ``(R, slate_size)`` probability that the policy puts that item in that slot
        (``0`` in padding).
    slate_propensity:
        ``(R,)`` probability of the whole ordered slate.
    """

    items: np.ndarray
    propensity: np.ndarray
    slate_propensity: np.ndarray


class SlatePolicy(Protocol):
    """What the world needs from a policy to run it (see :meth:`World.simulate_log`)."""

    @property
    def slate_size(self) -> int:
        """Slots per slate."""
        ...

    def choose(self, rng: np.random.Generator, requests: RequestBatch) -> SlateDecision:
        """One slate per request, with its probabilities under this policy."""
        ...


@dataclass(frozen=True)
class PopularityExplorationPolicy:
    """An ε-mixture of the recent-popularity ranking and a uniformly random slate.

    For a request with ``n`` available items and ``L = min(slate_size, n)`` slots:
    with probability ``1 - ε`` the slate is :meth:`ranking`, the ``L`` items with
    the most recent clicks, most clicked first (ties: newest first); with
    probability ``ε`` it is a uniformly random ordered sample of ``L`` distinct
    available items. Hence, exactly,

    .. math::

        \\pi(a_k = i) = \\varepsilon / n + (1 - \\varepsilon)\\, 1[\\mathrm{top}_k = i],
        \\qquad
        \\pi(\\mathbf a) = \\varepsilon \\prod_{j<L} \\frac{1}{n - j}
        + (1 - \\varepsilon)\\, 1[\\mathbf a = \\mathrm{top}].

    The marginal ``π(a_k = i)`` is what position-wise IPS needs (Li et al., "Offline
    evaluation of ranking policies with click models", KDD 2018); the slate
    probability is what standard slate-level IPS needs.

    Parameters
    ----------
    slate_size:
        Slots per slate, ``K``.
    exploration:
        ``ε`` in ``[0, 1]``; ``0`` never explores (non-top items then have
        propensity 0), ``1`` is the uniform random policy.
    """

    slate_size: int
    exploration: float

    def __post_init__(self) -> None:
        if (
            isinstance(self.slate_size, bool)
            or not isinstance(self.slate_size, int | np.integer)
            or not 1 <= self.slate_size <= 1_000
        ):
            raise ValueError(f"`slate_size` must be an int in 1..1000 (got {self.slate_size!r})")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"`exploration` must be in [0, 1] (got {self.exploration!r})")

    def ranking(self, requests: RequestBatch) -> np.ndarray:
        """The exploit slates: ``(R, slate_size)`` most recently clicked candidates."""
        span, inside = requests.candidate_span()
        clicks = requests.recent_clicks[span].astype(np.float64)
        # Popularity first, then recency: a larger index was published later.
        key = clicks * (len(requests.recent_clicks) + 1) + span
        return best_per_row(np.where(inside, key[None, :], -1.0), span, inside, self.slate_size)

    def choose(self, rng: np.random.Generator, requests: RequestBatch) -> SlateDecision:
        """Draw one slate per request and its exact probabilities.

        Parameters
        ----------
        rng:
            Source of randomness.
        requests:
            The batch to serve.

        Returns
        -------
        SlateDecision
            The slates and their probabilities under this policy.
        """
        k, eps = self.slate_size, self.exploration
        n = requests.n_candidates
        if len(n) == 0:
            empty = np.empty((0, k), dtype=np.int64)
            return SlateDecision(empty, np.empty((0, k)), np.empty(0))
        top = self.ranking(requests)
        span, inside = requests.candidate_span()
        random = best_per_row(np.where(inside, rng.random(inside.shape), -1.0), span, inside, k)
        explore = rng.random(len(n)) < eps
        items = np.where(explore[:, None], random, top)

        propensity = np.where(items >= 0, eps / n[:, None] + (1.0 - eps) * (items == top), 0.0)
        length = np.minimum(n, k)
        log_uniform = -(gammaln(n + 1.0) - gammaln(n - length + 1.0))
        slate_propensity = eps * np.exp(log_uniform) + (1.0 - eps) * (items == top).all(axis=1)
        return SlateDecision(items, propensity, slate_propensity)


def best_per_row(key: np.ndarray, span: np.ndarray, inside: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ``k`` candidates with the largest key, best first; ``-1`` pads."""
    width = key.shape[1]
    if width > k:
        cut = np.argpartition(-key, k - 1, axis=1)[:, :k]
    else:
        cut = np.broadcast_to(np.arange(width), key.shape).copy()
    order = np.argsort(-np.take_along_axis(key, cut, axis=1), axis=1, kind="stable")
    cols = np.take_along_axis(cut, order, axis=1)
    chosen = np.where(np.take_along_axis(inside, cols, axis=1), span[cols], -1)
    if width < k:
        chosen = np.pad(chosen, ((0, 0), (0, k - width)), constant_values=-1)
    return chosen
