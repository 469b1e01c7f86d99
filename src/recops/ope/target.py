"""Candidate (target) policies given as a model plus a ranking policy.

A target policy is either an action-distribution array (use
:meth:`recops.ope.batch.OPEBatch.from_action_dist`), or a model's scores of each logged
request's candidates plus a :class:`~recops.experiments.policies.RankingPolicy`. For the
latter, :func:`batch_from_ranking_policy` computes the policy's item-position
marginals over the logged candidates, request by request, without ever building the
``(n_rows, n_actions, len_list)`` array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recops.experiments.policies import RankingPolicy
from recops.models.base import Queries, Recommender
from recops.ope.batch import OPEBatch
from recops.ope.feedback import LoggedFeedback
from recops.ope.rescore import pick_columns


def _slate_rows(feedback: LoggedFeedback, n_slates: int) -> list[np.ndarray]:
    if feedback.slate_id is None:
        raise ValueError("`feedback.slate_id` is needed to match rows to their request")
    _, inverse = np.unique(feedback.slate_id, return_inverse=True)
    if inverse.max() + 1 != n_slates:
        raise ValueError(
            f"`candidates` has {n_slates} requests but the feedback has {inverse.max() + 1} slates"
        )
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(n_slates + 1))
    return [order[bounds[s] : bounds[s + 1]] for s in range(n_slates)]


def batch_from_ranking_policy(
    feedback: LoggedFeedback,
    candidates: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    policy: RankingPolicy,
    estimated_rewards: np.ndarray | None = None,
) -> OPEBatch:
    """Evaluate ``policy`` on target-model ``scores`` of the logged candidates.

    Parameters
    ----------
    feedback:
        Logged rows with ``slate_id`` (rows of one request share it).
    candidates:
        Per request, in sorted ``slate_id`` order: the candidates' action indices.
    scores:
        Per request: the target model's scores of ``candidates``.
    policy:
        How the target turns scores into a slate (greedy, ε-greedy, Plackett–Luce).
    estimated_rewards:
        Optional ``q̂`` for DM/DR: shape ``(n_actions, len_list)`` (context-free) or
        ``(n_rows, n_actions, len_list)``.

    Returns
    -------
    OPEBatch
        With ``target_pscore`` = the target's probability of each logged item at its
        logged position (0 when the item was not a candidate).
    """
    if len(candidates) != len(scores):
        raise ValueError(
            f"`candidates` and `scores` must have one entry per request "
            f"(got {len(candidates)} and {len(scores)})"
        )
    n, k_max = feedback.n_rows, feedback.len_list
    q_hat = None if estimated_rewards is None else np.asarray(estimated_rewards, dtype=float)
    if q_hat is not None and q_hat.shape not in (
        (feedback.n_actions, k_max),
        (n, feedback.n_actions, k_max),
    ):
        raise ValueError(
            f"`estimated_rewards` must have shape ({feedback.n_actions}, {k_max}) or "
            f"({n}, {feedback.n_actions}, {k_max}) (got {q_hat.shape})"
        )
    target = np.zeros(n)
    q_fact = np.zeros(n)
    q_target = np.zeros(n)
    for s, rows in enumerate(_slate_rows(feedback, len(candidates))):
        cands = np.asarray(candidates[s], dtype=np.int64)
        sc = np.asarray(scores[s], dtype=np.float64)
        if cands.shape != sc.shape:
            raise ValueError(
                f"request {s}: `scores` must have one score per candidate "
                f"(got {sc.shape[0]} for {cands.shape[0]})"
            )
        marg, _ = policy.marginals(sc)
        local = {int(a): j for j, a in enumerate(cands)}
        for i in rows:
            k = int(feedback.position[i])
            if k >= marg.shape[1]:
                raise ValueError(
                    f"row {i}: position {k} is beyond the policy's slate_size={marg.shape[1]}"
                )
            j = local.get(int(feedback.action[i]))
            target[i] = 0.0 if j is None else marg[j, k]
            if q_hat is not None:
                q_row = q_hat if q_hat.ndim == 2 else q_hat[i]
                q_fact[i] = q_row[feedback.action[i], k]
                q_target[i] = float(marg[:, k] @ q_row[cands, k])
    return OPEBatch(
        reward=feedback.reward,
        pscore=feedback.pscore,
        target_pscore=target,
        q_hat_factual=None if q_hat is None else q_fact,
        q_hat_target=None if q_hat is None else q_target,
        slate_id=feedback.slate_id,
    )


def model_candidate_scores(
    model: Recommender, queries: Queries, candidate_ids: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """A fitted (or loaded) model's scores of each request's candidates.

    Parameters
    ----------
    model:
        Any :class:`~recops.models.base.Recommender`.
    queries:
        One query per request, in the order of ``candidate_ids``.
    candidate_ids:
        Per request, the candidate item ids (as in the model's ``item_ids_``).

    Returns
    -------
    list of numpy.ndarray
        Per request, one score per candidate; ``-inf`` is replaced by the lowest
        finite score the model gave in that row minus one, so ranking policies can
        use it (see :func:`recops.ope.rescore.pick_columns`).
    """
    if len(queries) != len(candidate_ids):
        raise ValueError(
            f"`queries` and `candidate_ids` must have the same length "
            f"(got {len(queries)} and {len(candidate_ids)})"
        )
    all_scores = np.asarray(model.score(queries), dtype=np.float64)
    known = {str(item) for item in model.item_ids_}
    out = []
    for r, ids in enumerate(candidate_ids):
        missing = [i for i in ids if str(i) not in known]
        if missing:
            raise ValueError(f"request {r}: candidate {str(missing[0])!r} is unknown to the model")
        row = np.asarray(ids, dtype=object)[None, :]
        out.append(pick_columns(model, all_scores[r : r + 1], row)[0])
    return out
