"""The oracle: the best slate policy there is, because it knows the truth.

Under the position-based click model the expected clicks of a slate are
``Σ_k examination(k) · attractiveness(item_k)``; since examination decreases with
the slot, the rearrangement inequality makes "the most attractive items, most
attractive first" the maximum. Its value is the ceiling any learned policy is
measured against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recops.data.world.logging_policy import RequestBatch, SlateDecision, best_per_row

if TYPE_CHECKING:
    from recops.data.world.truth import World


class OraclePolicy:
    """Shows each user the available items with the highest true attractiveness.

    Deterministic: every shown slate has propensity 1.

    Parameters
    ----------
    world:
        The world whose truth ranks the items.
    slate_size:
        Slots per slate; the world's ``slate_size`` when None.
    """

    def __init__(self, world: World, slate_size: int | None = None) -> None:
        size = world.config.slate_size if slate_size is None else slate_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1_000:
            raise ValueError(f"`slate_size` must be an int in 1..1000 (got {size!r})")
        self.world = world
        self.slate_size = size

    def choose(self, rng: np.random.Generator, requests: RequestBatch) -> SlateDecision:
        """The best slate of each request (``rng`` is unused: the oracle never explores)."""
        span, inside = requests.candidate_span()
        truth = self.world.attractiveness(
            requests.user[:, None], span[None, :], requests.time[:, None]
        )
        items = best_per_row(np.where(inside, truth, -1.0), span, inside, self.slate_size)
        shown = items >= 0
        return SlateDecision(items, shown.astype(np.float64), np.ones(len(items)))
