"""The torch modules: item, user, query, category and similar-item towers, and the prior.

All towers end in an L2 normalisation, so every score is ``score_scale`` times a
cosine similarity in one shared space; the time-aware ``item_prior`` is added on
top for user→item scores only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two-layer perceptron: ``Linear → ReLU → Linear``."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class ContentEncoder(nn.Module):
    """Bags of category and title-token embeddings, shared by several towers.

    Index 0 is padding in both bags and is excluded from the means, so an item
    without categories or title contributes zero vectors.
    """

    def __init__(
        self, n_categories: int, text_buckets: int, dim: int, sparse: bool = False
    ) -> None:
        super().__init__()
        self.categories = nn.EmbeddingBag(
            n_categories + 1, dim, mode="mean", padding_idx=0, sparse=sparse
        )
        self.tokens = nn.EmbeddingBag(
            text_buckets + 1, dim, mode="mean", padding_idx=0, sparse=sparse
        )

    def forward(self, categories: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.categories(categories), self.tokens(tokens)], dim=-1)


class ItemTower(nn.Module):
    """Item id embedding + content vector (category and title bags) → MLP → unit vector.

    The content encoder is passed in at call time rather than owned, because the
    query, category and similar-item towers share it (and a shared sub-module
    would be saved twice).
    """

    def __init__(self, n_items: int, dim: int, hidden: int, sparse: bool = False) -> None:
        super().__init__()
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=0, sparse=sparse)
        self.mlp = mlp(3 * dim, hidden, dim)

    def forward(self, items: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``items`` may hold 0 (id hidden by dropout, or unknown): content alone then."""
        return F.normalize(self.mlp(torch.cat([self.ids(items), content], dim=-1)), dim=-1)


class UserTower(nn.Module):
    """Recent history (with recency weights) + optional user id → MLP → unit vector.

    A history item is read as its id embedding plus a linear map of its content
    (category and title bags), so an item the model has no id row for (added after
    training, or first seen after the training window) still carries what it is
    about (:meth:`TwoTowerNet.history_vectors`). The history is pooled twice: a
    plain mean (long-term taste) and a weighted mean whose log-weights are a learned
    bias per recency rank plus a learned slope on ``log1p(hours since the event)``
    (short-term intent). Padding gets no weight, so an empty history yields a
    valid, learned cold-start vector.
    """

    def __init__(
        self,
        n_items: int,
        n_users: int,
        max_history: int,
        dim: int,
        hidden: int,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.history = nn.Embedding(n_items + 1, dim, padding_idx=0, sparse=sparse)
        self.content = nn.Linear(2 * dim, dim, bias=False)
        # Column max_history - 1 is the most recent item (histories are right-aligned).
        self.rank_bias = nn.Parameter(torch.zeros(max_history))
        self.age_slope = nn.Parameter(torch.zeros(()))
        self.users = (
            nn.Embedding(n_users + 1, dim, padding_idx=0, sparse=sparse) if n_users > 0 else None
        )
        n_in = 2 * dim + 1 + (dim if self.users is not None else 0)
        self.mlp = mlp(n_in, hidden, dim)

    def forward(
        self,
        emb: torch.Tensor,
        mask: torch.Tensor,
        age_hours: torch.Tensor,
        users: torch.Tensor | None,
    ) -> torch.Tensor:
        """Unit vectors from ``(n, L, dim)`` history vectors and their ``(n, L)`` mask."""
        count = mask.sum(dim=1, keepdim=True).float()
        mean = (emb * mask.unsqueeze(-1)).sum(dim=1) / count.clamp(min=1.0)
        logw = self.rank_bias[-mask.shape[1] :] + self.age_slope * torch.log1p(age_hours)
        logw = logw.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logw, dim=1).nan_to_num(0.0)  # all-padding rows → 0
        recent = (emb * weights.unsqueeze(-1)).sum(dim=1)
        parts = [recent, mean, torch.log1p(count)]
        if self.users is not None:
            if users is None:
                users = torch.zeros(mask.shape[0], dtype=torch.long)
            parts.append(self.users(users))
        return F.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)


class PriorNet(nn.Module):
    """``item_prior = f(log recent counts, log age, unseen flag)``, a tiny MLP.

    It is the learned blend of popularity windows and freshness; its inputs come
    from :class:`~recops.models.two_tower.features.TimeCounts`.
    """

    def __init__(self, n_features: int, hidden: int = 16) -> None:
        super().__init__()
        self.net = mlp(n_features, hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


class TwoTowerNet(nn.Module):
    """All towers of the multi-task model in one module (one set of weights).

    Parameters
    ----------
    n_items, n_users, n_categories:
        Vocabulary sizes (index 0 excluded); ``n_users = 0`` disables user ids.
    text_buckets, max_history, dim, hidden:
        See :class:`~recops.models.two_tower.config.TwoTowerConfig`.
    n_prior_features:
        Inputs of the prior network; 0 disables the prior.
    sparse:
        Embedding tables produce sparse gradients (only the rows a batch touched),
        for a row-wise optimiser (:func:`sparse_parameters`).
    """

    has_id: torch.Tensor

    def __init__(
        self,
        n_items: int,
        n_users: int,
        n_categories: int,
        text_buckets: int,
        max_history: int,
        dim: int,
        hidden: int,
        n_prior_features: int,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.content = ContentEncoder(n_categories, text_buckets, dim, sparse)
        self.item = ItemTower(n_items, dim, hidden, sparse)
        self.user = UserTower(n_items, n_users, max_history, dim, hidden, sparse)
        self.query = mlp(dim, hidden, dim)
        self.category = mlp(dim, hidden, dim)
        self.similar = mlp(3 * dim, hidden, dim)
        self.prior = PriorNet(n_prior_features) if n_prior_features > 0 else None
        # Which id rows were trained (items with a training event): the others read
        # as id 0, their content alone, in every tower.
        self.register_buffer("has_id", torch.zeros(n_items + 1, dtype=torch.bool))

    def visible_ids(self, items: torch.Tensor) -> torch.Tensor:
        """``items`` with 0 wherever the id row is untrained or beyond the table."""
        inside = items < self.has_id.shape[0]
        safe = torch.where(inside, items, torch.zeros_like(items))
        return torch.where(inside & self.has_id[safe], items, torch.zeros_like(items))

    def encode_items(
        self, items: torch.Tensor, categories: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Unit item vectors; an item without a trained id row gets its content-only vector."""
        return self.item(self.visible_ids(items), self.content(categories, tokens))

    def history_vectors(
        self,
        items: torch.Tensor,
        categories: torch.Tensor,
        tokens: torch.Tensor,
        hide_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """How the user tower reads items: id embedding (when trained) + mapped content.

        ``hide_ids`` (training only) drops the id part of some items, so the content
        part learns to stand alone. Item 0 (padding) gives a zero vector.
        """
        ids = self.visible_ids(items)
        if hide_ids is not None:
            ids = torch.where(hide_ids, torch.zeros_like(ids), ids)
        vectors = self.user.history(ids) + self.user.content(self.content(categories, tokens))
        return vectors * (items > 0).unsqueeze(-1)

    def encode_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unit vectors of texts given as padded hashed-token ids."""
        return F.normalize(self.query(self.content.tokens(tokens)), dim=-1)

    def encode_categories(self, categories: torch.Tensor) -> torch.Tensor:
        """Unit vectors of single categories (indices ``1..n_categories``)."""
        return F.normalize(self.category(self.content.categories(categories[:, None])), dim=-1)

    def encode_similar(
        self, items: torch.Tensor, categories: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Unit "seed item" vectors whose nearest items are the likely next items."""
        x = torch.cat(
            [self.user.history(self.visible_ids(items)), self.content(categories, tokens)], dim=-1
        )
        return F.normalize(self.similar(x), dim=-1)


def sparse_parameters(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The embedding tables with sparse gradients, and every other parameter."""
    sparse_ids = {
        id(m.weight)
        for m in net.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse
    }
    params = list(net.parameters())
    return [p for p in params if id(p) in sparse_ids], [
        p for p in params if id(p) not in sparse_ids
    ]
