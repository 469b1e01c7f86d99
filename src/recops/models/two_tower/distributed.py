"""Data-parallel training of the two-tower model: the collective steps, on ``torch.distributed``.

Used by the training loop (:mod:`~recops.models.two_tower.training`) when a process
group exists (Ray Train starts one, :mod:`~recops.models.two_tower.ray_train`); each
function is the identity for a process alone.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from recops.models.two_tower.network import TwoTowerNet, sparse_parameters


def data_parallel() -> tuple[int, int]:
    """``(rank, world size)`` of this process's ``torch.distributed`` group; ``(0, 1)`` alone."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast_weights(net: TwoTowerNet) -> None:
    """Rank 0's weights and buffers on every worker (the same seed makes them equal anyway)."""
    for tensor in net.state_dict().values():
        dist.broadcast(tensor, src=0)


def average_gradients(net: TwoTowerNet, world: int) -> None:
    """Replace every gradient by its mean over the ``world`` workers (one all-reduce each kind).

    By hand rather than ``DistributedDataParallel``: the loss is not one module's
    ``forward`` (it calls several towers, and validation calls them outside
    training), the tasks a batch trains may leave parameters unused, and the
    sparse embedding tables (``sparse_embeddings``) produce sparse gradients. The
    dense gradients travel in one flat buffer (one all-reduce per step); gloo
    all-reduces a sparse gradient as a gather of its rows, summed, so a step still
    costs the rows the batches touched. Every worker gets the same sums, so the
    weights stay bit-identical on all workers (checked in the tests).
    """
    sparse, dense = sparse_parameters(net)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in dense]
    if grads:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for p, g in zip(dense, grads, strict=True):
            p.grad = flat[offset : offset + g.numel()].view_as(p)
            offset += g.numel()
    for p in sparse:
        rows = p.grad
        if rows is None:  # untouched here, maybe not elsewhere: an empty sparse gradient
            rows = torch.sparse_coo_tensor(
                torch.zeros((1, 0), dtype=torch.long), torch.zeros((0, *p.shape[1:])), p.shape
            )
        rows = rows.coalesce()
        dist.all_reduce(rows)
        p.grad = rows.coalesce() / world


def agreed(value: float, world: int) -> float:
    """Rank 0's ``value`` on every worker (early stopping must stop all of them at once)."""
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def mean_over_workers(value: float, world: int) -> float:
    """The mean of ``value`` over the workers (a logged loss)."""
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world


def gather_strided(mine: list[list[float]], n: int, width: int, world: int) -> list[list[float]]:
    """Rows ``0..n-1`` of a table each worker ``r`` computed rows ``r::world`` of.

    Every worker gets every row, in order (``width`` floats each).
    """
    local = torch.full((-(-n // world), width), float("nan"), dtype=torch.float64)
    for j, row in enumerate(mine):
        local[j] = torch.tensor(row, dtype=torch.float64)
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    return [parts[i % world][i // world].tolist() for i in range(n)]
