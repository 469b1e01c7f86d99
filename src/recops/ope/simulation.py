"""OPE on the simulated world, where the truth is known: log, estimate, compare.

The flow mirrors production. For every request a *current* model scores the items on
the site, its top ``n_candidates`` become the candidate set (retrieval), and a
stochastic logging policy turns the current model's scores into a slate and logs each
shown item's propensity. A *challenger* — other scores plus a ranking policy over the
same candidates — is then evaluated off-policy from those logs, and its true value is
computed from the world's exact click model.

A policy's value here is the click-through rate per shown slot: the expected clicks
of a slate divided by ``slate_size`` (slate estimators report clicks per slate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.data.world.truth import World
from recops.experiments.policies import RankingPolicy
from recops.models.base import Recommender
from recops.ope._validation import check_positive_int
from recops.ope.batch import OPEBatch
from recops.ope.feedback import LoggedFeedback
from recops.ope.report import OPEReport, evaluate_policy
from recops.ope.rescore import CausalHistories, pick_columns
from recops.ope.reward_model import LogisticRewardModel, RewardData, cross_fit_predict
from recops.ope.slate import SlateBatch

ScoreFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``scores(user_idx (R,), item_idx (R, M), t (R,)) -> (R, M)``: a model's scores."""

_SECONDS_PER_DAY = 86_400


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def pair_noise(user_idx: np.ndarray, item_idx: np.ndarray, seed: int) -> np.ndarray:
    """Standard normal noise fixed per (user, item, seed), without an n_users × n_items table."""
    u = np.asarray(user_idx).astype(np.uint64)
    i = np.asarray(item_idx).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(u * np.uint64(0x100000001B3) ^ _splitmix64(i + np.uint64(seed)))
        other = _splitmix64(key)
    # Box–Muller on two 53-bit uniforms in (0, 1].
    scale = 1.0 / float(1 << 53)
    u1 = ((key >> np.uint64(11)).astype(np.float64) + 1.0) * scale
    u2 = (other >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def noisy_oracle_scores(world: World, noise: float, seed: int = 0) -> ScoreFn:
    """A stand-in model of known quality: the true attraction logit plus fixed noise.

    ``score(u, i, t) = logit(attractiveness(u, i, t)) + noise · ε_{u,i}`` with
    ``ε ~ N(0, 1)`` fixed per (user, item, seed), so the "model" is deterministic.
    Smaller ``noise`` is a better model.
    """
    if not noise >= 0:
        raise ValueError(f"`noise` must be >= 0 (got {noise!r})")

    def scores(user_idx: np.ndarray, item_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        u = np.asarray(user_idx)[:, None]
        p = world.attractiveness(u, item_idx, np.asarray(t)[:, None])
        # Unpublished items have attractiveness 0; clipping keeps their logit finite.
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return np.log(p / (1 - p)) + noise * pair_noise(u, np.asarray(item_idx), seed)

    return scores


def recommender_score_fn(model: Recommender, world: World, interactions: pd.DataFrame) -> ScoreFn:
    """The scores of a fitted recommender for the world's requests, as a :data:`ScoreFn`.

    Each request's query holds the user's events in ``interactions`` *before* the
    request time (causal), so any :class:`~recops.models.base.Recommender` can play
    the current model or the challenger. Items the model does not know score below
    every item it knows.

    Parameters
    ----------
    model:
        A fitted recommender whose item ids are the world's (``"i123"``).
    world:
        The simulated site.
    interactions:
        Events in the interaction schema (e.g. the world's clicks).
    """
    histories = CausalHistories(interactions)

    def score(user_idx: np.ndarray, item_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        queries = histories.queries([str(u) for u in world.user_ids(user_idx)], t)
        full = np.asarray(model.score(queries), dtype=np.float64)
        return pick_columns(model, full, world.item_ids(item_idx))

    return score


def standardized(score_fn: ScoreFn) -> ScoreFn:
    """``score_fn`` with each request's scores z-scored across the items it is given.

    Ranking is unchanged; a ranking policy's temperature then means the same thing
    for models whose raw scores live on different scales.
    """

    def score(user_idx: np.ndarray, item_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        s = np.asarray(score_fn(user_idx, item_idx, t), dtype=np.float64)
        finite = np.isfinite(s)
        mean = np.nanmean(np.where(finite, s, np.nan), axis=1, keepdims=True)
        std = np.nanstd(np.where(finite, s, np.nan), axis=1, keepdims=True)
        return np.where(finite, (s - mean) / np.where(std > 0, std, 1.0), s)

    return score


@dataclass(frozen=True)
class Requests:
    """Requests with their candidate sets.

    Parameters
    ----------
    user, t:
        User index and time of each request, shape ``(R,)``.
    candidates:
        Item indices of the candidates, best first under the retrieval model, ``(R, N)``.
    """

    user: np.ndarray
    t: np.ndarray
    candidates: np.ndarray

    def __len__(self) -> int:
        return int(self.user.shape[0])


def sample_requests(
    world: World,
    retrieval: ScoreFn,
    n_requests: int,
    n_candidates: int,
    rng: np.random.Generator,
) -> Requests:
    """Draw requests after the first day and retrieve each one's top candidates.

    Parameters
    ----------
    world:
        The simulated site.
    retrieval:
        The current model, whose top ``n_candidates`` available items are the candidates.
    n_requests, n_candidates:
        Sizes.
    rng:
        Source of randomness.

    Returns
    -------
    Requests
    """
    check_positive_int("n_requests", n_requests)
    check_positive_int("n_candidates", n_candidates)
    start = world.config.start_time + _SECONDS_PER_DAY
    t = rng.integers(start, world.config.end_time, size=n_requests)
    users = np.array([world.sample_request(rng, int(ti)) for ti in t])
    lo, hi = world.available_range(t)
    if np.min(hi - lo) < n_candidates:
        raise ValueError(
            f"some requests have only {int(np.min(hi - lo))} items available; "
            f"lower `n_candidates` (got {n_candidates})"
        )
    # Score every request's available items at once on a padded window.
    width = int(np.max(hi - lo))
    candidates = np.empty((n_requests, n_candidates), dtype=np.int64)
    chunk = max(1, 2_000_000 // width)
    for start in range(0, n_requests, chunk):
        part = slice(start, start + chunk)
        items = lo[part, None] + np.arange(width)[None, :]
        valid = items < hi[part, None]
        items = np.minimum(items, world.n_items - 1)
        s = np.where(valid, retrieval(users[part], items, t[part]), -np.inf)
        top = np.argsort(-s, kind="stable", axis=1)[:, :n_candidates]
        candidates[part] = np.take_along_axis(items, top, axis=1)
    return Requests(user=users, t=t, candidates=candidates)


@dataclass(frozen=True)
class SimulatedLogs:
    """Traffic logged under a stochastic policy.

    ``feedback.action`` is the candidate *slot* (0 = the retrieval model's best), so
    the action space is ``n_candidates`` and ``slate_id`` is the request index.
    ``slates`` holds the shown slots ``(R, K)`` and ``prefix_pscore`` the logging
    policy's prefix probabilities ``(R, K)``.
    """

    requests: Requests
    scores: np.ndarray
    slates: np.ndarray
    prefix_pscore: np.ndarray
    feedback: LoggedFeedback


def simulate_logs(
    world: World,
    requests: Requests,
    scores: np.ndarray,
    policy: RankingPolicy,
    rng: np.random.Generator,
) -> SimulatedLogs:
    """Show slates drawn by ``policy`` from ``scores`` and draw clicks from the truth.

    Parameters
    ----------
    world:
        The simulated site (the truth).
    requests:
        Requests and candidates.
    scores:
        The logging model's scores of the candidates, ``(R, N)``.
    policy:
        The stochastic logging policy.
    rng:
        Source of randomness.

    Returns
    -------
    SimulatedLogs
    """
    n_req, k = len(requests), policy.slate_size
    slates, pscore, prefix = policy.sample_batch(scores, rng)
    items = np.take_along_axis(requests.candidates, slates, axis=1)
    clicks = world.simulate_clicks(rng, requests.user, items, requests.t)
    feedback = LoggedFeedback(
        action=slates.ravel(),
        reward=clicks.ravel().astype(np.float64),
        pscore=pscore.ravel(),
        n_actions=requests.candidates.shape[1],
        position=np.tile(np.arange(k), n_req),
        len_list=k,
        slate_id=np.repeat(np.arange(n_req), k),
    )
    return SimulatedLogs(requests, scores, slates, prefix, feedback)


def target_marginals(scores: np.ndarray, policy: RankingPolicy) -> np.ndarray:
    """The target's ``P(slot j at position k)`` per request, ``(R, N, K)``."""
    return policy.marginals_batch(scores)


def true_value(
    world: World, requests: Requests, scores: np.ndarray, policy: RankingPolicy
) -> np.ndarray:
    """Exact expected click-through per slot of ``policy`` on each request, ``(R,)``."""
    marg = target_marginals(scores, policy)
    k = policy.slate_size
    probs = world.click_probability(
        requests.user[:, None, None],
        requests.candidates[:, :, None],
        np.arange(k)[None, None, :],
        requests.t[:, None, None],
    )
    return np.einsum("rjk,rjk->r", marg, probs) / k


def ope_batch(
    logs: SimulatedLogs, marginals: np.ndarray, q_hat: np.ndarray | None = None
) -> OPEBatch:
    """The standard estimators' batch for a target with per-request ``marginals``."""
    rows = logs.feedback.slate_id
    assert rows is not None
    dist = marginals[rows]
    return OPEBatch.from_action_dist(logs.feedback, dist, q_hat)


def slate_batch(
    logs: SimulatedLogs, target_scores: np.ndarray, target: RankingPolicy, marginals: np.ndarray
) -> SlateBatch:
    """The slate estimators' batch: prefix, slate and item-position propensities."""
    fb = logs.feedback
    k = target.slate_size
    target_prefix = np.stack(
        [
            target.prefix_probabilities(s, slate)
            for s, slate in zip(target_scores, logs.slates, strict=True)
        ]
    )
    assert fb.slate_id is not None
    return SlateBatch(
        slate_id=fb.slate_id,
        reward=fb.reward,
        pscore_slate=np.repeat(logs.prefix_pscore[:, -1], k),
        target_pscore_slate=np.repeat(target_prefix[:, -1], k),
        pscore_item_position=fb.pscore,
        target_pscore_item_position=marginals[fb.slate_id, fb.action, fb.position],
        pscore_cascade=logs.prefix_pscore.ravel(),
        target_pscore_cascade=target_prefix.ravel(),
    )


def cross_fitted_q_hat(
    logs: SimulatedLogs,
    target_scores: np.ndarray | None = None,
    n_folds: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Cross-fitted ``q̂(request, slot, position)`` for DM / DR.

    A logistic regression on the logging model's score of each candidate (and the
    target model's, when given) plus position effects: what a team would fit from its
    exposure log's candidate scores.
    """
    rows = logs.feedback.slate_id
    assert rows is not None
    columns = [logs.scores[rows]]
    if target_scores is not None:
        columns.append(np.asarray(target_scores)[rows])
    features = np.stack(columns, axis=-1)
    data = RewardData.from_feedback(logs.feedback, features)
    return cross_fit_predict(
        lambda: LogisticRewardModel(l2=1e-4, action_effects=False), data, n_folds, seed
    )


@dataclass(frozen=True)
class DemoResult:
    """What ``recops demo`` prints: OPE of the challenger next to the truth.

    Parameters
    ----------
    report:
        Every estimator's estimate of the challenger's CTR, with the recommendation
        (``report.truth`` is the challenger's true CTR).
    logged_ctr:
        Click-through rate observed in the logs (the current policy, on-policy).
    current_true_ctr, challenger_true_ctr:
        Exact CTRs of both policies on the same requests, from the world's truth.
    """

    report: OPEReport
    logged_ctr: float
    current_true_ctr: float
    challenger_true_ctr: float


def run_ope_demo(
    world: World,
    current: ScoreFn,
    challenger: ScoreFn,
    logging_policy: RankingPolicy,
    target_policy: RankingPolicy,
    *,
    n_requests: int = 3000,
    n_candidates: int = 20,
    seed: int = 0,
) -> DemoResult:
    """Log traffic under the current model, estimate the challenger off-policy.

    Parameters
    ----------
    world:
        The simulated site.
    current, challenger:
        Score functions of the two models (see :data:`ScoreFn`); the current model
        also retrieves the candidates.
    logging_policy, target_policy:
        Ranking policies of the current model (stochastic) and of the challenger.
    n_requests, n_candidates:
        Traffic and candidate-set sizes.
    seed:
        Seed of requests, slates and clicks.

    Returns
    -------
    DemoResult
    """
    if logging_policy.slate_size != target_policy.slate_size:
        raise ValueError(
            "`logging_policy` and `target_policy` must have the same slate_size "
            f"(got {logging_policy.slate_size} and {target_policy.slate_size})"
        )
    rng = np.random.default_rng(seed)
    requests = sample_requests(world, current, n_requests, n_candidates, rng)
    current_scores = current(requests.user, requests.candidates, requests.t)
    challenger_scores = challenger(requests.user, requests.candidates, requests.t)
    logs = simulate_logs(world, requests, current_scores, logging_policy, rng)
    marginals = target_marginals(challenger_scores, target_policy)
    batch = ope_batch(logs, marginals, cross_fitted_q_hat(logs, challenger_scores, seed=seed))
    truth = float(np.mean(true_value(world, requests, challenger_scores, target_policy)))
    report = evaluate_policy(batch, truth=truth, title="Challenger CTR: off-policy vs truth")
    return DemoResult(
        report=report,
        logged_ctr=float(np.mean(logs.feedback.reward)),
        current_true_ctr=float(
            np.mean(true_value(world, requests, current_scores, logging_policy))
        ),
        challenger_true_ctr=truth,
    )
