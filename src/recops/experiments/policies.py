"""Stochastic ranking policies that turn scored candidates into a slate *with propensities*.

A deterministic top-k ranker makes off-policy evaluation impossible: items it never
shows get no weight. These policies randomise, and report for every shown item the
exact probability of showing it at that position, which is what the exposure log
must record (see :mod:`recops.ope.feedback`).

Each policy gives, for one request's candidate scores ``s`` (shape ``(n,)``):

* :meth:`sample` — a slate and its propensities (a :class:`SlateSample`);
* :meth:`marginals` — the ``(n, slate_size)`` matrix ``P(item i at position k)``:
  exact where it can be computed, otherwise a Monte Carlo estimate with its standard
  error;
* :meth:`prefix_probabilities` — the probability of each top-``k`` prefix of a given
  slate (the last entry is the whole slate's probability), for slate estimators.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlateSample:
    """A sampled slate and the probabilities the policy had of showing it.

    Parameters
    ----------
    items:
        Candidate indices in position order, shape ``(slate_size,)``.
    propensity:
        ``P(items[k] at position k)``, shape ``(slate_size,)``.
    propensity_stderr:
        Monte Carlo standard error of ``propensity`` (0 where exact).
    prefix_propensity:
        ``P(positions 0..k show items[0..k])``, shape ``(slate_size,)``; the last entry
        is the probability of the whole slate.
    """

    items: np.ndarray
    propensity: np.ndarray
    propensity_stderr: np.ndarray
    prefix_propensity: np.ndarray

    @property
    def slate_propensity(self) -> float:
        """Probability of the whole slate."""
        return float(self.prefix_propensity[-1])


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ValueError(f"`{name}` must be a positive int (got {value!r})")


def _check_scores(scores: object, slate_size: int, ndim: int = 1) -> np.ndarray:
    """Scores of one request (``ndim=1``) or a batch ``(n_requests, n)`` (``ndim=2``)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != ndim:
        expected = "(n_candidates,)" if ndim == 1 else "(n_requests, n_candidates)"
        raise ValueError(f"`scores` must have shape {expected} (got {s.shape})")
    if s.shape[-1] < slate_size:
        raise ValueError(
            f"`scores` must have at least slate_size={slate_size} candidates (got {s.shape[-1]})"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("`scores` must be finite (mask ineligible candidates out before)")
    return s


def _check_slate(slate: object, n: int, slate_size: int) -> np.ndarray:
    items = np.asarray(slate, dtype=np.int64)
    if items.shape != (slate_size,):
        raise ValueError(f"`slate` must have shape ({slate_size},) (got {items.shape})")
    if items.min() < 0 or items.max() >= n or np.unique(items).size != slate_size:
        raise ValueError(f"`slate` must hold {slate_size} distinct indices in 0..{n - 1}")
    return items


def _ranking(scores: np.ndarray) -> np.ndarray:
    # Stable sort on -score: ties go to the lower index, deterministically.
    return np.argsort(-scores, kind="stable")


class RankingPolicy(ABC):
    """A (possibly stochastic) map from candidate scores to a slate."""

    slate_size: int

    @abstractmethod
    def prefix_probabilities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """``P(positions 0..k show slate[0..k])`` for every ``k``."""

    @abstractmethod
    def marginals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``P(item i at position k)`` (shape ``(n, slate_size)``) and its standard error."""

    @abstractmethod
    def _draw(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One slate of candidate indices."""

    def marginals_batch(self, scores: np.ndarray) -> np.ndarray:
        """:meth:`marginals` of many requests, ``(n_requests, n, slate_size)``.

        Monte Carlo errors are not returned here; use :meth:`marginals` for them.
        """
        rows = _check_scores(scores, self.slate_size, ndim=2)
        return np.stack([self.marginals(row)[0] for row in rows])

    def sample_batch(
        self, scores: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slates for many requests: ``(items, propensity, prefix_propensity)``, each ``(R, K)``."""
        samples = [self.sample(row, rng) for row in _check_scores(scores, self.slate_size, ndim=2)]
        return (
            np.stack([x.items for x in samples]),
            np.stack([x.propensity for x in samples]),
            np.stack([x.prefix_propensity for x in samples]),
        )

    def sample(self, scores: np.ndarray, rng: np.random.Generator) -> SlateSample:
        """Draw a slate for one request and report its propensities.

        Parameters
        ----------
        scores:
            The model's scores of the request's candidates, shape ``(n,)``.
        rng:
            Source of randomness.

        Returns
        -------
        SlateSample
        """
        s = _check_scores(scores, self.slate_size)
        items = self._draw(s, rng)
        marg, err = self.marginals(s)
        positions = np.arange(self.slate_size)
        return SlateSample(
            items=items,
            propensity=marg[items, positions],
            propensity_stderr=err[items, positions],
            prefix_propensity=self.prefix_probabilities(s, items),
        )


@dataclass(frozen=True)
class GreedyPolicy(RankingPolicy):
    """The deterministic top-``slate_size`` ranking (propensity 1 for what it shows).

    Parameters
    ----------
    slate_size:
        Number of positions.
    """

    slate_size: int = 1

    def __post_init__(self) -> None:
        _check_count("slate_size", self.slate_size)

    def _draw(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _ranking(scores)[: self.slate_size]

    def marginals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One-hot ``(n, slate_size)`` matrix of the top-k ranking; zero error."""
        s = _check_scores(scores, self.slate_size)
        marg = np.zeros((s.shape[0], self.slate_size))
        marg[_ranking(s)[: self.slate_size], np.arange(self.slate_size)] = 1.0
        return marg, np.zeros_like(marg)

    def prefix_probabilities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """1 while ``slate`` agrees with the top-k ranking, 0 from the first difference."""
        s = _check_scores(scores, self.slate_size)
        items = _check_slate(slate, s.shape[0], self.slate_size)
        agree = items == _ranking(s)[: self.slate_size]
        return np.cumprod(agree).astype(np.float64)


@dataclass(frozen=True)
class EpsilonGreedyPolicy(RankingPolicy):
    """ε-greedy over slates: the top-k ranking, or with probability ε a uniform slate.

    With probability ``1 - ε`` the top-``slate_size`` candidates are shown in score
    order; with probability ``ε`` an ordered sample without replacement, uniform over
    the ``explore_top`` best candidates (all when None). Exactly:

    ``P(i at k) = (1 - ε) 1{rank(i) = k} + ε 1{rank(i) < m} / m``

    Parameters
    ----------
    slate_size:
        Number of positions.
    epsilon:
        Exploration probability in [0, 1].
    explore_top:
        Size ``m ≥ slate_size`` of the exploration pool (the best ``m`` candidates).
    """

    slate_size: int = 1
    epsilon: float = 0.1
    explore_top: int | None = None

    def __post_init__(self) -> None:
        _check_count("slate_size", self.slate_size)
        if isinstance(self.epsilon, bool) or not 0.0 <= float(self.epsilon) <= 1.0:
            raise ValueError(f"`epsilon` must be a float in [0, 1] (got {self.epsilon!r})")
        if self.explore_top is not None and (
            isinstance(self.explore_top, bool)
            or not isinstance(self.explore_top, int)
            or self.explore_top < self.slate_size
        ):
            raise ValueError(
                f"`explore_top` must be an int >= slate_size={self.slate_size} "
                f"(got {self.explore_top!r})"
            )

    def _pool(self, n: int) -> int:
        return n if self.explore_top is None else min(n, self.explore_top)

    def _draw(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ranking = _ranking(scores)
        if rng.random() < self.epsilon:
            pool = ranking[: self._pool(scores.shape[0])]
            return rng.choice(pool, size=self.slate_size, replace=False)
        return ranking[: self.slate_size]

    def marginals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(n, slate_size)`` marginals; zero error."""
        s = _check_scores(scores, self.slate_size)
        ranking = _ranking(s)
        m = self._pool(s.shape[0])
        marg = np.zeros((s.shape[0], self.slate_size))
        marg[ranking[:m], :] = self.epsilon / m
        marg[ranking[: self.slate_size], np.arange(self.slate_size)] += 1.0 - self.epsilon
        return marg, np.zeros_like(marg)

    def prefix_probabilities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """``(1-ε) 1{prefix = top prefix} + ε 1{prefix ⊂ pool} Π_{t≤k} 1/(m-t)``."""
        s = _check_scores(scores, self.slate_size)
        items = _check_slate(slate, s.shape[0], self.slate_size)
        ranking = _ranking(s)
        m = self._pool(s.shape[0])
        in_pool = np.isin(items, ranking[:m])
        uniform = np.cumprod(in_pool / (m - np.arange(self.slate_size)))
        greedy = np.cumprod(items == ranking[: self.slate_size])
        return (1.0 - self.epsilon) * greedy + self.epsilon * uniform


@dataclass(frozen=True)
class PlackettLucePolicy(RankingPolicy):
    """Softmax / Plackett–Luce sampling without replacement, with a temperature.

    Position ``k`` draws among the candidates not yet shown with probability
    ``exp(s_i / τ) / Σ_{j remaining} exp(s_j / τ)``. Prefix (and whole-slate)
    probabilities are exact products. Item-position marginals are exact by
    enumerating prefixes while that costs at most ``max_exact_cells`` (about
    ``n^slate_size`` operations); otherwise they are estimated from ``n_samples``
    Monte Carlo slates, with standard error ``√(p (1 - p) / n_samples)``.

    Parameters
    ----------
    slate_size:
        Number of positions.
    temperature:
        ``τ > 0``; small is nearly greedy, large nearly uniform.
    n_samples:
        Monte Carlo slates when marginals are not computed exactly.
    max_exact_cells:
        Work budget of the exact computation.
    seed:
        Seed of the Monte Carlo estimate, so a request's propensities are reproducible.

    References
    ----------
    Plackett, R. L. (1975). The analysis of permutations. Applied Statistics 24(2).
    """

    slate_size: int = 1
    temperature: float = 1.0
    n_samples: int = 20_000
    max_exact_cells: int = 4_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        _check_count("slate_size", self.slate_size)
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not (0 < t < math.inf):
            raise ValueError(f"`temperature` must be a positive finite float (got {t!r})")
        _check_count("n_samples", self.n_samples)
        _check_count("max_exact_cells", self.max_exact_cells)

    def _weights(self, scores: np.ndarray) -> np.ndarray:
        z = scores / self.temperature
        return np.exp(z - z.max(axis=-1, keepdims=True))

    def _draw(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Gumbel-top-k draws an exact Plackett–Luce slate in one vectorised step.
        keys = scores / self.temperature + rng.gumbel(size=scores.shape)
        return np.argsort(-keys, kind="stable", axis=-1)[..., : self.slate_size]

    def _prefix_batch(self, w: np.ndarray, slates: np.ndarray) -> np.ndarray:
        shown = np.take_along_axis(w, slates, axis=-1)
        before = np.cumsum(shown, axis=-1) - shown
        return np.cumprod(shown / (w.sum(axis=-1, keepdims=True) - before), axis=-1)

    def prefix_probabilities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """Exact ``Π_{t≤k} w(slate[t]) / (W - Σ_{u<t} w(slate[u]))``."""
        s = _check_scores(scores, self.slate_size)
        items = _check_slate(slate, s.shape[0], self.slate_size)
        return self._prefix_batch(self._weights(s), items)

    def exact_cost(self, n_candidates: int) -> int:
        """Operations the exact marginals would take for ``n_candidates``."""
        return math.perm(n_candidates, self.slate_size - 1) * n_candidates

    def marginals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``P(item i at position k)``, exact when affordable, else Monte Carlo."""
        s = _check_scores(scores, self.slate_size)
        if self.exact_cost(s.shape[0]) <= self.max_exact_cells:
            marg = self._exact_marginals(self._weights(s)[None, :])[0]
            return marg, np.zeros_like(marg)
        return self._monte_carlo_marginals(s)

    def marginals_batch(self, scores: np.ndarray) -> np.ndarray:
        """Exact marginals of many requests at once (Monte Carlo per request otherwise)."""
        s = _check_scores(scores, self.slate_size, ndim=2)
        cost = self.exact_cost(s.shape[1])
        if cost > self.max_exact_cells:
            return super().marginals_batch(s)
        w = self._weights(s)
        chunk = max(1, self.max_exact_cells // cost)
        return np.concatenate(
            [self._exact_marginals(w[i : i + chunk]) for i in range(0, s.shape[0], chunk)]
        )

    def sample_batch(
        self, scores: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised Gumbel-top-k slates with exact propensities."""
        s = _check_scores(scores, self.slate_size, ndim=2)
        items = self._draw(s, rng)
        marg = self.marginals_batch(s)
        rows = np.arange(s.shape[0])[:, None]
        propensity = marg[rows, items, np.arange(self.slate_size)[None, :]]
        return items, propensity, self._prefix_batch(self._weights(s), items)

    def _exact_marginals(self, w: np.ndarray) -> np.ndarray:
        """Exact marginals for weights ``w`` of shape ``(R, n)`` by prefix enumeration."""
        n_req, n = w.shape
        marg = np.zeros((n_req, n, self.slate_size))
        # Prefixes (ordered item tuples) are the same for every request; only their
        # probabilities differ, so they are enumerated once.
        prefixes = np.zeros((1, 0), dtype=np.int64)
        prob = np.ones((n_req, 1))
        remaining = w.sum(axis=1, keepdims=True)
        for k in range(self.slate_size):
            # P(i at k) = Σ_prefixes P(prefix) w_i / rem(prefix), for i not in the prefix.
            scale = prob / remaining
            member = np.zeros((prefixes.shape[0], n))
            member[np.arange(prefixes.shape[0])[:, None], prefixes] = 1.0
            marg[:, :, k] = w * (scale.sum(axis=1, keepdims=True) - scale @ member)
            if k + 1 == self.slate_size:
                break
            rows, items = np.nonzero(member == 0)
            prefixes = np.concatenate([prefixes[rows], items[:, None]], axis=1)
            prob = scale[:, rows] * w[:, items]
            remaining = remaining[:, rows] - w[:, items]
        return marg

    def _monte_carlo_marginals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        n = scores.shape[0]
        counts = np.zeros((n, self.slate_size))
        chunk = max(1, 2_000_000 // n)
        z = scores / self.temperature
        for start in range(0, self.n_samples, chunk):
            size = min(chunk, self.n_samples - start)
            keys = z[None, :] + rng.gumbel(size=(size, n))
            top = np.argpartition(-keys, self.slate_size - 1, axis=1)[:, : self.slate_size]
            order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
            slates = np.take_along_axis(top, order, axis=1)
            for k in range(self.slate_size):
                counts[:, k] += np.bincount(slates[:, k], minlength=n)
        marg = counts / self.n_samples
        return marg, np.sqrt(marg * (1.0 - marg) / self.n_samples)


def action_distribution(policy: RankingPolicy, scores: np.ndarray) -> np.ndarray:
    """A policy's marginals for a batch of requests: ``(n_requests, n_candidates, slate_size)``.

    This is the ``action_dist`` a candidate policy has over the logged candidates
    (rows of ``scores``), in the form the estimators of :mod:`recops.ope` take.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"`scores` must have shape (n_requests, n_candidates) (got {s.shape})")
    return np.stack([policy.marginals(row)[0] for row in s])
