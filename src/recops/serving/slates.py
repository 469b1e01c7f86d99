"""The policy step of a request: ranked candidates → the slate shown, with its propensities.

Outside experiments (and for greedy variants) the slate is the model's top ``k`` and
every propensity is 1. A variant with an exploring policy chooses from the best
``pool`` candidates (:class:`~recops.experiments.serving_policy.ServingPolicy`), and
the exposure records the exact probability of each shown item at its position plus
the candidates it chose from, which is what off-policy evaluation of another policy
on this log needs. An interleaving experiment merges its two arms' slates by team
draft (:mod:`recops.experiments.interleaving`) and records which arm contributed
each position, with the exact probability the coin flips had of putting each item
there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.experiments.interleaving import team_draft, team_draft_propensities
from recops.serving.experiments import Arm
from recops.serving.service import Ranked

#: The policy an interleaving exposure logs.
TEAM_DRAFT = "team_draft"


# Not frozen: a frozen dataclass's __init__ costs about 1 µs more, per request.
@dataclass(slots=True)
class ServedSlate:
    """What a request shows.

    Parameters
    ----------
    items:
        The shown items, in position order.
    scores:
        Their scores (for interleaving, from the arm that contributed each).
    propensities:
        ``P(items[p] shown at position p)`` under the policy.
    candidates, candidate_scores:
        The candidates the policy chose from; ``None`` when it showed the model's top
        ``k`` (it chose from nothing more than what it showed).
    sources:
        Interleaving: the variant that contributed each position.
    """

    items: list[str]
    scores: list[float]
    propensities: list[float]
    candidates: list[str] | None = None
    candidate_scores: list[float] | None = None
    sources: list[str] | None = None


class SlateChooser:
    """Applies an arm's policy to its ranked candidates, or interleaves two arms.

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
        names = arm.bundle.item_names
        if arm.policy is None or not rows:
            return ServedSlate([names[r] for r in rows[:k]], scores[:k], [1.0] * len(rows[:k]))
        slate = arm.policy.select(
            np.asarray(scores), k, self.rng, rows=np.asarray(rows, dtype=np.int64)
        )
        picked = slate.items.tolist()
        return ServedSlate(
            items=[names[rows[i]] for i in picked],
            scores=[scores[i] for i in picked],
            propensities=slate.propensity.tolist(),
            candidates=[names[r] for r in rows],
            candidate_scores=scores,
        )

    def interleave(
        self, arms: tuple[Arm, Arm], slates: tuple[ServedSlate, ServedSlate], k: int
    ) -> ServedSlate:
        """Team draft of the two arms' slates (each as its policy chose it)."""
        a, b = slates
        merged = team_draft(a.items, b.items, k, self.rng)
        items = [str(i) for i in merged.items]
        score_of = ({i: s for i, s in zip(a.items, a.scores, strict=True)},
                    {i: s for i, s in zip(b.items, b.scores, strict=True)})  # fmt: skip
        teams = merged.teams.tolist()
        return ServedSlate(
            items=items,
            scores=[score_of[t][i] for i, t in zip(items, teams, strict=True)],
            propensities=team_draft_propensities(a.items, b.items, items),
            sources=merged.sources((arms[0].variant, arms[1].variant)),
        )
