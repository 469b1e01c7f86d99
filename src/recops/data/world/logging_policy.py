"""The built-in logging policy: recent popularity mixed with uniform exploration.

It is deliberately *not* the truth (it ignores who the user is), and stochastic, so
that the logs it produces carry the exploration off-policy estimators need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln


class SlateDecision(NamedTuple):
    """Slates chosen for a batch of requests, with the exact logging probabilities.

    Attributes
    ----------
    items:
        ``(n_requests, slate_size)`` item indices, ``-1`` after the end of a slate
        that is shorter because fewer items were available.
    top:
        ``(n_requests, slate_size)`` the slate the policy shows when it exploits.
    propensity:
        ``(n_requests, slate_size)`` probability that the policy puts that item in
        that position (``0`` in padding).
    slate_propensity:
        ``(n_requests,)`` probability of the whole ordered slate.
    """

    items: np.ndarray
    top: np.ndarray
    propensity: np.ndarray
    slate_propensity: np.ndarray


@dataclass(frozen=True)
class PopularityExplorationPolicy:
    """An ε-mixture of the recent-popularity ranking and a uniformly random slate.

    For a request with ``n`` available items and ``L = min(slate_size, n)`` slots:
    with probability ``1 - ε`` the slate is the ``L`` items with the most clicks in
    the recent window, most clicked first (ties: newest first); with probability
    ``ε`` it is a uniformly random ordered sample of ``L`` distinct available items.
    Hence, exactly,

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
    window_seconds:
        Clicks younger than this count towards popularity.
    """

    slate_size: int
    exploration: float
    window_seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.slate_size, bool) or not 1 <= self.slate_size <= 1_000:
            raise ValueError(f"`slate_size` must be an int in 1..1000 (got {self.slate_size!r})")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"`exploration` must be in [0, 1] (got {self.exploration!r})")
        if not self.window_seconds > 0:
            raise ValueError(f"`window_seconds` must be > 0 (got {self.window_seconds!r})")

    def choose(
        self,
        rng: np.random.Generator,
        lo: np.ndarray,
        hi: np.ndarray,
        recent_clicks: np.ndarray,
    ) -> SlateDecision:
        """Draw one slate per request whose candidates are the items ``lo[r]..hi[r]-1``.

        Parameters
        ----------
        rng:
            Source of randomness.
        lo, hi:
            ``(n_requests,)`` candidate index ranges ``[lo, hi)``, each non-empty.
        recent_clicks:
            ``(n_items,)`` clicks per item in the recent window.

        Returns
        -------
        SlateDecision
            The slates and their exact probabilities under this policy.
        """
        lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
        n = hi - lo
        if n.size and n.min() < 1:
            raise ValueError("every request needs at least one candidate item (got an empty range)")
        k = self.slate_size
        if n.size == 0:
            empty = np.empty((0, k), dtype=np.int64)
            return SlateDecision(empty, empty, np.empty((0, k)), np.empty(0))
        span = np.arange(lo.min(), hi.max(), dtype=np.int64)
        inside = (span[None, :] >= lo[:, None]) & (span[None, :] < hi[:, None])
        # Popularity first, then recency: a larger index was published later.
        rank_key = recent_clicks[span].astype(np.float64) * (len(recent_clicks) + 1) + span
        top = _best(np.where(inside, rank_key[None, :], -1.0), span, inside, k)
        random = _best(np.where(inside, rng.random(inside.shape), -1.0), span, inside, k)
        explore = rng.random(len(n)) < self.exploration
        items = np.where(explore[:, None], random, top)

        eps = self.exploration
        shown = items >= 0
        propensity = np.where(shown, eps / n[:, None] + (1.0 - eps) * (items == top), 0.0)
        length = np.minimum(n, k)
        log_uniform = -(gammaln(n + 1.0) - gammaln(n - length + 1.0))
        slate_propensity = eps * np.exp(log_uniform) + (1.0 - eps) * (items == top).all(axis=1)
        return SlateDecision(items, top, propensity, slate_propensity)


def _best(key: np.ndarray, span: np.ndarray, inside: np.ndarray, k: int) -> np.ndarray:
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
