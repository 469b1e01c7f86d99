"""Fitting ``item_prior`` to what the catalog will be consumed over a coming horizon.

The prior trained inside the softmax learns which items the *next event* goes to;
an evaluation (or a feed) asks which items users will take over the next days or
weeks. This module fits the same small network, on the same causal features, to
that longer target:

.. math::

    \\min_\\theta \\; -\\sum_a \\sum_j \\hat p_j(a, h) \\,
        \\log \\operatorname{softmax}_j\\big(f_\\theta(x_j(a))\\big)

where the anchors :math:`a` are moments spread over the training period,
:math:`x_j(a)` are item :math:`j`'s count / age features at :math:`a` (events
before :math:`a` only) and :math:`\\hat p_j(a, h)` is the share of the events in
:math:`[a, a + h)` that went to item :math:`j`: a multinomial likelihood of the
next ``h`` seconds of consumption. Which horizon serves best is chosen on the
validation window, together with the weight of the prior against the towers.
"""

from __future__ import annotations

import numpy as np
import torch

from recops.models.two_tower.features import TimeCounts
from recops.models.two_tower.network import PriorNet

#: Anchors per fit: enough moments to cover the period, few enough to stay cheap.
N_ANCHORS = 48
STEPS = 150
LEARNING_RATE = 0.03


def horizon_targets(
    counts: TimeCounts, anchors: np.ndarray, horizon: int, n_items: int
) -> np.ndarray:
    """``(n_anchors, n_items)`` share of events in ``[a, a + horizon)`` per item."""
    items = np.arange(1, n_items + 1)
    start = counts.cum[counts.bucket(anchors)][:, items].astype(np.float64)
    end = counts.cum[counts.bucket(anchors + horizon)][:, items].astype(np.float64)
    total = np.maximum((end - start).sum(axis=1, keepdims=True), 1.0)
    return ((end - start) / total).astype(np.float32)


def fit_horizon_prior(
    counts: TimeCounts,
    times: np.ndarray,
    n_items: int,
    horizon: int,
    end: int,
    seed: int,
) -> PriorNet:
    """A :class:`PriorNet` fitted to the next ``horizon`` seconds of consumption.

    Parameters
    ----------
    counts:
        Causal counts of the events the prior may learn from.
    times:
        Timestamps of those events; anchors are their quantiles (so busy periods
        get more anchors), restricted to ``a + horizon <= end`` when possible.
    n_items:
        Number of items (indices ``1..n_items``).
    horizon:
        Length in seconds of the consumption period to predict.
    end:
        No target may use events at or after ``end``.
    seed:
        Seeds the initialisation.
    """
    usable = times[times + horizon <= end]
    if len(usable) == 0:
        usable = times[times < end]
    anchors = np.unique(np.quantile(usable, np.linspace(0.05, 1.0, N_ANCHORS), method="lower"))
    anchors = anchors.astype(np.int64)
    targets = torch.from_numpy(horizon_targets(counts, anchors, min(horizon, 1 << 40), n_items))
    keep = targets.sum(dim=1) > 0
    items = np.arange(1, n_items + 1)
    feats = torch.from_numpy(counts.features(items[None, :], anchors[:, None]))[keep]
    targets = targets[keep]
    torch.manual_seed(seed)
    prior = PriorNet(counts.n_features)
    optim = torch.optim.Adam(prior.parameters(), lr=LEARNING_RATE)
    for _ in range(STEPS):
        loss = -(targets * torch.log_softmax(prior(feats), dim=1)).sum(dim=1).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    prior.eval()
    return prior
