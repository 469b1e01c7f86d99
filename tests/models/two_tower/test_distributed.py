"""The data-parallel training loop in a plain gloo process group (no Ray needed).

Two processes, spawned: the averaged gradients of two half batches are the full
batch's (dense and sparse tables alike), and after a whole ``train_network`` both
workers hold the same weights, bit for bit (early stopping stopped them together).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recops.models.two_tower import TwoTower
from recops.models.two_tower.distributed import average_gradients, data_parallel
from recops.models.two_tower.network import TwoTowerNet
from recops.models.two_tower.training import train_network
from tests.models.two_tower.conftest import SMALL, two_clusters

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)

WORLD = 2


def _net(sparse: bool) -> TwoTowerNet:
    torch.manual_seed(0)
    return TwoTowerNet(20, 0, 3, 64, 5, 8, 16, 0, sparse=sparse)


def _loss(net: TwoTowerNet, items: torch.Tensor) -> torch.Tensor:
    """A mean over rows touching a sparse-able table and dense layers."""
    vectors = net.encode_similar(
        items, torch.zeros(len(items), 1, dtype=torch.long), items[:, None]
    )
    return (vectors * torch.arange(1.0, 9.0)).sum(dim=1).square().mean()


def _gradients_worker(rank: int, store: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        assert data_parallel() == (rank, WORLD)
        items = torch.tensor([1, 2, 3, 5, 8, 13, 2, 1])
        for sparse in (False, True):
            full, part = _net(sparse), _net(sparse)
            _loss(full, items).backward()
            _loss(part, items[rank::WORLD]).backward()
            average_gradients(part, WORLD)
            for (name, a), b in zip(full.named_parameters(), part.parameters(), strict=True):
                if a.grad is None:
                    continue
                expected = a.grad.to_dense() if a.grad.is_sparse else a.grad
                got = b.grad.to_dense() if b.grad is not None and b.grad.is_sparse else b.grad
                assert got is not None, name
                torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5, msg=name)
    finally:
        dist.destroy_process_group()


def _training_worker(rank: int, store: str, sparse: bool) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        interactions, items = two_clusters()
        model = TwoTower(**SMALL, sparse_embeddings=sparse)
        net, summary = train_network(model.prepare(interactions, items).data, model.config)
        flat = torch.cat([v.detach().float().reshape(-1) for v in net.state_dict().values()])
        theirs = flat.clone()
        dist.broadcast(theirs, src=0)
        assert torch.equal(flat, theirs), "the workers' weights differ"
        assert summary.epochs_run >= 1 and np.isfinite(summary.train_loss).all()
    finally:
        dist.destroy_process_group()


def test_averaged_half_batch_gradients_are_the_full_batch_gradient(tmp_path: Path) -> None:
    mp.spawn(_gradients_worker, args=(str(tmp_path / "store"),), nprocs=WORLD)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_workers_end_with_identical_weights(tmp_path: Path, sparse: bool) -> None:
    mp.spawn(_training_worker, args=(str(tmp_path / "store"), sparse), nprocs=WORLD)


def test_alone_the_loop_is_not_data_parallel() -> None:
    assert data_parallel() == (0, 1)
