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

A large catalog makes every step cost ``n_anchors × n_items`` rows (a news site's
18k articles: 28 s per horizon, most of a fit). Above :data:`ROW_ITEMS` items,
each anchor keeps its ``ROW_ITEMS / 2`` items of largest target exactly and a
uniform sample of ``ROW_ITEMS / 2`` of the others, each weighing
``n_others / n_sampled`` in both sums of the loss (the Horvitz–Thompson
estimate of the numerator and of the softmax's normaliser; drawn once per fit,
so the objective is fixed). Catalogs up to ``ROW_ITEMS`` items are fitted
exactly, as before.
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
#: Items per anchor above which the loss is estimated on a sample (module docstring).
ROW_ITEMS = 4096


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
    log_weights = None
    if n_items > ROW_ITEMS:
        feats, targets, log_weights = _sample_items(feats, targets, ROW_ITEMS, seed)
    torch.manual_seed(seed)
    prior = PriorNet(counts.n_features)
    optim = torch.optim.Adam(prior.parameters(), lr=LEARNING_RATE)
    for _ in range(STEPS):
        logits = prior(feats)
        if log_weights is None:
            loss = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        else:  # each anchor's targets sum to 1: sum_j t_j log softmax_j = sum_j t_j f_j - lse
            normaliser = torch.logsumexp(logits + log_weights, dim=1)
            loss = -((targets * logits).sum(dim=1) - normaliser).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    prior.eval()
    return prior


def _sample_items(
    feats: torch.Tensor, targets: torch.Tensor, n_rows: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each anchor's ``n_rows`` items: its heaviest half exactly, a weighted sample of the rest.

    Returns the sampled ``(n_anchors, n_rows, n_features)`` features, the targets
    multiplied by each item's weight, and the log of the weights (for the
    normaliser): 1 for the heaviest items, ``n_others / n_sampled`` for the sample.
    """
    rng = np.random.default_rng(seed)
    n_items = targets.shape[1]
    heavy = n_rows // 2
    weight = (n_items - heavy) / (n_rows - heavy)
    columns = np.empty((len(targets), n_rows), dtype=np.int64)
    for a, row in enumerate(targets.numpy()):
        order = np.argsort(-row, kind="stable")
        columns[a, :heavy] = order[:heavy]
        columns[a, heavy:] = rng.choice(order[heavy:], n_rows - heavy, replace=False)
    index = torch.from_numpy(columns)
    weights = torch.ones(n_rows)
    weights[heavy:] = weight
    sampled = torch.gather(targets, 1, index) * weights
    rows = torch.gather(feats, 1, index[:, :, None].expand(-1, -1, feats.shape[2]))
    return rows, sampled, torch.log(weights).expand(len(targets), -1)


#: Weight of the all-time count in a window prior: it only breaks ties between
#: items with the same count in the window (as ``RecentPopular`` does).
TIE_BREAK = 1e-3


@torch.no_grad()
def window_prior(counts: TimeCounts, window: int) -> PriorNet:
    """A :class:`PriorNet` that is recent popularity: ``log1p(count in the window)``.

    ``window`` is one of ``counts.windows``; ties are broken by the all-time
    count. The network computes the score exactly (its features are non-negative,
    so the ReLU passes them), so it is stored like any fitted prior. It is a
    candidate of the validation choice next to the fitted horizons, so the model
    is never held below the recent-popularity baseline its prior is made of.
    """
    if window not in counts.windows:
        raise ValueError(f"`window` must be one of {list(counts.windows)} (got {window})")
    prior = PriorNet(counts.n_features)
    first, last = prior.net[0], prior.net[2]
    assert isinstance(first, torch.nn.Linear) and isinstance(last, torch.nn.Linear)
    w1 = torch.zeros_like(first.weight)
    w1[0, counts.windows.index(window)] = 1.0
    w1[1, len(counts.windows)] = 1.0  # the all-time count
    w2 = torch.zeros_like(last.weight)
    w2[0, 0], w2[0, 1] = 1.0, TIE_BREAK
    first.weight.copy_(w1)
    last.weight.copy_(w2)
    first.bias.zero_()
    last.bias.zero_()
    prior.eval()
    return prior
