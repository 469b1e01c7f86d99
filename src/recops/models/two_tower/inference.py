"""NumPy copies of the user tower and the prior for the real-time path.

A torch forward pass costs tens of microseconds of dispatch overhead per layer;
for one request with a 50-item history, plain NumPy on the same weights is
several times faster. Both paths compute the same function (tested to 1e-5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from recops.models.two_tower.features import TimeCounts
from recops.models.two_tower.kernels import user_vector
from recops.models.two_tower.network import PriorNet, TwoTowerNet, UserTower


@dataclass(frozen=True)
class NumpyMLP:
    """``relu(x @ w1 + b1) @ w2 + b2`` with float32 weights."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def from_torch(cls, seq: object) -> NumpyMLP:
        first, last = seq[0], seq[2]  # type: ignore[index]
        return cls(
            first.weight.detach().numpy().T.copy(),
            first.bias.detach().numpy().copy(),
            last.weight.detach().numpy().T.copy(),
            last.bias.detach().numpy().copy(),
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2


def history_weight(
    n_items: np.ndarray | int, weights: tuple[float, float], max_history: int
) -> np.ndarray:
    """Weight of the tower score for users with ``n_items`` known history items.

    Interpolates, linearly in ``log1p(n)``, from ``weights[0]`` (empty history) to
    ``weights[1]`` (``max_history`` items or more): the more a user has done, the
    more their personal score counts against the time-aware prior. The user
    vector carries the weight as its norm, so ``score_scale * user @ item +
    item_prior(now)`` needs no per-user term.
    """
    share = np.minimum(np.log1p(n_items) / np.log1p(max_history), 1.0)
    return np.asarray(weights[0] + (weights[1] - weights[0]) * share, dtype=np.float32)


#: Items encoded per step when building tables (bounds the bags' temporary memory).
_CHUNK = 65_536


@torch.no_grad()
def history_table(
    net: TwoTowerNet, categories: np.ndarray, tokens: np.ndarray, first: int
) -> np.ndarray:
    """``history_vectors`` of items ``first..first + n - 1`` (content rows ``0..n - 1``).

    With ``first = 1`` the table starts with the zero padding row, so it is indexed
    by item index directly.
    """
    parts = [np.zeros((1, net.user.history.embedding_dim), dtype=np.float32)] if first == 1 else []
    for start in range(0, len(categories), _CHUNK):
        stop = min(start + _CHUNK, len(categories))
        items = torch.arange(first + start, first + stop)
        vectors = net.history_vectors(
            items, torch.from_numpy(categories[start:stop]), torch.from_numpy(tokens[start:stop])
        )
        parts.append(vectors.numpy())
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def _normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class UserEncoder:
    """The user tower of :class:`~recops.models.two_tower.network.UserTower` in NumPy.

    ``history`` holds, per item index (row 0: padding, zeros), the vector the tower
    reads for that item (:meth:`~recops.models.two_tower.network.TwoTowerNet.history_vectors`):
    computed once per model, and extended with content-only rows by :meth:`with_rows`
    when items are added.
    """

    history: np.ndarray
    rank_bias: np.ndarray
    age_slope: float
    users: np.ndarray | None
    mlp: NumpyMLP

    @classmethod
    def from_network(
        cls, net: TwoTowerNet, categories: np.ndarray, tokens: np.ndarray
    ) -> UserEncoder:
        """The encoder of ``net`` for the items whose content is ``categories``/``tokens``.

        Row ``i`` of the content arrays is item index ``i + 1``.
        """
        tower: UserTower = net.user
        return cls(
            history=history_table(net, categories, tokens, first=1),
            rank_bias=tower.rank_bias.detach().numpy().copy(),
            age_slope=float(tower.age_slope.detach()),
            users=None if tower.users is None else tower.users.weight.detach().numpy().copy(),
            mlp=NumpyMLP.from_torch(tower.mlp),
        )

    def with_rows(self, rows: np.ndarray) -> UserEncoder:
        """A copy that also knows items whose history vectors are ``rows`` (appended)."""
        table = np.vstack([self.history, np.asarray(rows, dtype=np.float32)])
        return dataclasses.replace(self, history=np.ascontiguousarray(table))

    def __call__(self, history: np.ndarray, age_hours: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Unit vectors from right-aligned ``(n, L)`` item indices (0 = padding).

        Parameters
        ----------
        history:
            Item indices, most recent last, left-padded with 0.
        age_hours:
            Hours since each history event (any value on padding).
        users:
            ``(n,)`` user indices, 0 for users unknown to the model.
        """
        mask = history > 0
        emb = self.history[history]
        count = mask.sum(axis=1, keepdims=True).astype(np.float32)
        mean = (emb * mask[..., None]).sum(axis=1) / np.maximum(count, 1.0)
        logw = self.rank_bias[-history.shape[1] :] + self.age_slope * np.log1p(age_hours)
        logw = np.where(mask, logw, -np.inf)
        top = np.max(logw, axis=1, keepdims=True)
        w = np.where(mask, np.exp(logw - np.where(np.isfinite(top), top, 0.0)), 0.0)
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-30)
        recent = (emb * w[..., None]).sum(axis=1)
        parts = [recent, mean, np.log1p(count)]
        if self.users is not None:
            parts.append(self.users[users])
        return _normalize(self.mlp(np.concatenate(parts, axis=1).astype(np.float32)))

    def one(
        self, rows: np.ndarray, times: np.ndarray, now: int, user: int, weight: float
    ) -> np.ndarray:
        """The same function for one query of item ``rows`` (0-based), times in seconds.

        ``(dim,)``, of norm ``weight``. The real-time path, compiled into one call
        (:func:`recops.models.two_tower.kernels.user_vector`): each NumPy call costs
        about a microsecond whatever its size, and this path has only a few
        thousand multiply-adds to do.
        """
        mlp = self.mlp
        return user_vector(
            self.history,
            self.rank_bias,
            self.age_slope,
            self.users if self.users is not None else _NO_USERS,
            user,
            rows,
            times,
            now,
            mlp.w1,
            mlp.b1,
            mlp.w2,
            mlp.b2,
            weight,
        )


_NO_USERS = np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class PriorScorer:
    """``item_prior(now)`` for all items from causal counts and the prior MLP."""

    counts: TimeCounts
    mlp: NumpyMLP

    @classmethod
    def from_network(cls, net: TwoTowerNet, counts: TimeCounts | None) -> PriorScorer | None:
        if counts is None or not isinstance(net.prior, PriorNet):
            return None
        return cls(counts, NumpyMLP.from_torch(net.prior.net))

    def __call__(self, items: np.ndarray, now: int) -> np.ndarray:
        """Prior of item indices ``items`` at unix time ``now``, float32."""
        feats = self.counts.features(items, np.array(now, dtype=np.int64))
        return self.mlp(feats)[:, 0].astype(np.float32)
