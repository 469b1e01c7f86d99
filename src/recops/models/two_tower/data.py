"""The indexed training data and the user tower on a batch of its histories.

:class:`TrainingData` is what the training loop (:mod:`~recops.models.two_tower.training`)
and the validation window (:mod:`~recops.models.two_tower.validation`) both read;
:func:`user_vectors` (with :func:`age_hours`, the ages it feeds the tower) is the one
forward pass of the user tower that both run on it: the loop on each batch, the
validation on the window's users. They live apart from both so that the dependencies
run one way, ``training`` → ``validation`` → ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recops.models.two_tower.features import CatalogFeatures, Sequences, TimeCounts
from recops.models.two_tower.network import TwoTowerNet

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class TrainingData:
    """Everything the loop needs, already indexed (see ``features``).

    Parameters
    ----------
    sequences:
        Every training event with the user's history before it.
    catalog:
        Content of items ``1..n_items`` (row ``i`` is item ``i + 1``).
    counts:
        Causal popularity counts, or ``None`` when the prior is disabled.
    n_items, n_users, n_categories:
        Vocabulary sizes.
    item_weights:
        ``(n_items + 1,)`` weight of a click on each item in the user task (the
        exposure correction, see ``TwoTowerConfig.exposure_debias``), or ``None``.
    """

    sequences: Sequences
    catalog: CatalogFeatures
    counts: TimeCounts | None
    n_items: int
    n_users: int
    n_categories: int
    item_weights: np.ndarray | None = None

    def item_categories(self, items: np.ndarray) -> np.ndarray:
        """Padded category indices of item indices (item 0 has none)."""
        return _rows(self.catalog.categories, items)

    def item_tokens(self, items: np.ndarray) -> np.ndarray:
        """Padded token ids of item indices (item 0 has none)."""
        return _rows(self.catalog.tokens, items)


def _rows(table: np.ndarray, items: np.ndarray) -> np.ndarray:
    # Row j - 1 holds item j; item 0 (padding) maps to an all-zero row.
    padded = np.vstack([np.zeros((1, table.shape[1]), dtype=table.dtype), table])
    return padded[items]


def age_hours(now: np.ndarray, history: np.ndarray, history_times: np.ndarray) -> np.ndarray:
    """Hours between each history event and ``now`` (0 on padding), float32."""
    hours = (now[:, None] - history_times) / SECONDS_PER_HOUR
    return np.where(history > 0, np.maximum(hours, 0.0), 0.0).astype(np.float32)


def user_vectors(
    net: TwoTowerNet,
    data: TrainingData,
    history: np.ndarray,
    ages: np.ndarray,
    users: torch.Tensor | None,
    id_dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """User vectors of right-aligned ``(n, L)`` item histories (0 = padding).

    Every distinct item of the batch is read once (:meth:`TwoTowerNet.history_vectors`:
    id row plus content) and gathered into the ``(n, L, dim)`` history. With ``rng``,
    each distinct item's id part is dropped with probability ``id_dropout``.
    """
    unique, inverse = np.unique(history, return_inverse=True)
    hide = None
    if rng is not None and id_dropout > 0:
        hide = torch.from_numpy(rng.random(len(unique)) < id_dropout)
    rows = net.history_vectors(
        torch.from_numpy(unique),
        torch.from_numpy(data.item_categories(unique)),
        torch.from_numpy(data.item_tokens(unique)),
        hide,
    )
    emb = rows[torch.from_numpy(inverse.reshape(history.shape))]
    return net.user(emb, torch.from_numpy(history > 0), torch.from_numpy(ages), users)
