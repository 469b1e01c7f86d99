"""Sampled softmax over in-batch (and uniform) candidates with logQ correction.

Reference: Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
Item Recommendations", RecSys 2019; Yang et al., "Mixed Negative Sampling for
Learning Two-tower Neural Networks in Recommendations", WWW 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CandidateLogQ:
    """Expected number of times each item enters a batch's candidate set.

    With ``B`` in-batch positives drawn from the training events (item ``j`` with
    probability ``p_j``) and ``M`` extra negatives drawn uniformly from ``n`` items,
    item ``j`` appears ``q_j = B * p_j + M / n`` times on average, and the corrected
    logit is ``s_ij - log q_j`` (Yi et al., 2019, eq. 3, extended to the mixed
    sampler of Yang et al., 2020). Popular items are sampled as negatives more
    often; subtracting ``log q_j`` undoes that bias so the model estimates the full
    softmax instead of a popularity-discounted one.

    Parameters
    ----------
    item_probability:
        ``(n_items + 1,)`` probability of each item index among training events
        (index 0, padding, is never sampled).
    batch_size, uniform_negatives:
        ``B`` and ``M`` above.
    """

    item_probability: np.ndarray
    batch_size: int
    uniform_negatives: int

    def log_q(self, items: np.ndarray) -> np.ndarray:
        """``log q_j`` for item indices ``items``."""
        n = len(self.item_probability) - 1
        q = self.batch_size * self.item_probability[items] + self.uniform_negatives / n
        return np.log(np.maximum(q, 1e-12)).astype(np.float32)


def correct_logits(logits: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """logQ correction: ``logits[i, j] - log_q[j]`` (subtract, never add)."""
    return logits - log_q.unsqueeze(0)


def accidental_hits(positives: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Mask ``(B, C)`` of candidates equal to row ``i``'s positive, except column ``i``.

    Column ``i`` holds the positive itself (candidates start with the batch's
    positives); other columns with the same item would be negatives that are in
    fact positives ("accidental hits") and are removed from the softmax.
    """
    hits = positives.unsqueeze(1) == candidates.unsqueeze(0)
    own = torch.zeros_like(hits)
    n = positives.shape[0]
    own[torch.arange(n), torch.arange(n)] = True
    return hits & ~own


def sampled_softmax_loss(
    logits: torch.Tensor,
    log_q: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of row ``i`` against column ``i`` over sampled candidates.

    Parameters
    ----------
    logits:
        ``(B, C)`` scores with ``C >= B``; column ``i`` is row ``i``'s positive.
    log_q:
        ``(C,)`` log expected candidate counts; ``None`` disables the correction.
    mask:
        ``(B, C)`` True where a candidate must be removed (accidental hits).
    weights:
        ``(B,)`` per-row weights (rows with weight 0 are ignored); ``None`` = 1.

    Returns
    -------
    torch.Tensor
        The weighted mean loss (a scalar).
    """
    if log_q is not None:
        logits = correct_logits(logits, log_q)
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    target = torch.arange(logits.shape[0])
    per_row = F.cross_entropy(logits, target, reduction="none")
    if weights is None:
        return per_row.mean()
    return (per_row * weights).sum() / weights.sum().clamp(min=1e-12)
