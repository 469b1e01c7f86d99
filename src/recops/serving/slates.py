"""The policy step of a request: ranked candidates → the slate shown, with its propensities.

Outside experiments (and for greedy variants) the slate is the model's top ``k`` and
every propensity is 1. A variant with an exploring policy chooses from the best
``pool`` candidates (:class:`~recops.experiments.serving_policy.ServingPolicy`), and
the exposure records the exact probability of each shown item at its position plus
the candidates it chose from, which is what off-policy evaluation of another policy
on this log needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.serving.experiments import Arm

Ranked = tuple[list[int], list[float]]


@dataclass(frozen=True)
class ServedSlate:
    """What a request shows.

    Parameters
    ----------
    rows:
        The shown items' rows in the serving model's catalog, in position order.
    scores:
        Their scores (the model's, as ranked).
    propensities:
        ``P(rows[p] shown at position p)`` under the arm's policy.
    candidate_rows, candidate_scores:
        The candidates the policy chose from (the shown items themselves for the
        model's top ``k``).
    """

    rows: list[int]
    scores: list[float]
    propensities: list[float]
    candidate_rows: list[int]
    candidate_scores: list[float]


class SlateChooser:
    """Applies an arm's policy to its ranked candidates.

    Parameters
    ----------
    rng:
        The process's source of randomness (seeded from the OS by default).
    """

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng()

    def choose(self, arm: Arm, ranked: Ranked, k: int) -> ServedSlate:
        """The slate of ``arm`` from its candidates ``ranked`` (best first)."""
        rows, scores = ranked
        if arm.policy is None:
            top_rows, top_scores = rows[:k], scores[:k]
            return ServedSlate(top_rows, top_scores, [1.0] * len(top_rows), top_rows, top_scores)
        if not rows:
            return ServedSlate([], [], [], [], [])
        slate = arm.policy.select(
            np.asarray(scores), k, self.rng, rows=np.asarray(rows, dtype=np.int64)
        )
        picked = slate.items.tolist()
        return ServedSlate(
            rows=[rows[i] for i in picked],
            scores=[scores[i] for i in picked],
            propensities=slate.propensity.tolist(),
            candidate_rows=rows,
            candidate_scores=scores,
        )
