"""Data-parallel training of the two-tower network on Ray Train.

:func:`train_network_on_ray` runs :func:`~recops.models.two_tower.training.train_network`
on ``num_workers`` Ray Train workers (a ``TorchTrainer`` with a gloo process
group, CPU only). Inside the group the training loop is data-parallel: each
worker computes the loss of its shard of every global batch and the gradients are
averaged before each step, so the number of steps and the global batch size are
those of the embedded path (see ``training``). Rank 0 hands the trained network
back through a Ray Train checkpoint made of a safetensors file (the weights) and
a JSON file (the training summary); nothing is pickled to disk. The driver
rebuilds the network from them.

Ray is optional: without it, :func:`train_network_on_ray` raises a
``RuntimeError`` that says how to install it.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.data import TrainingData
from recops.models.two_tower.network import TwoTowerNet
from recops.models.two_tower.training import TrainingSummary, build_network, train_network
from recops.optional import import_ray

WEIGHTS = "weights.safetensors"
SUMMARY = "summary.json"


def _ray() -> Any:
    return import_ray(
        "train", "train.torch",
        needed_by="training the two-tower model on Ray (ray_workers >= 1; 0 trains here)",
        install="ray[train]",
    )  # fmt: skip


def _train_loop(config: dict[str, Any]) -> None:
    """The body of every Ray Train worker: train, then rank 0 checkpoints the result."""
    import ray
    import ray.train

    # The arrays come read-only from the object store, shared by the workers (no
    # copy); training only reads them, so torch's warning about it is noise.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    data: TrainingData = ray.get(config["data"])
    cfg = TwoTowerConfig.model_validate(config["cfg"])
    rank = ray.train.get_context().get_world_rank()
    net, summary = train_network(data, cfg, verbose=bool(config["verbose"]) and rank == 0)
    metrics = {"train_loss": summary.train_loss[-1] if summary.train_loss else float("nan")}
    if rank != 0:
        ray.train.report(metrics)  # every worker reports (a barrier); only rank 0 saves
        return
    with tempfile.TemporaryDirectory() as tmp:
        state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(Path(tmp) / WEIGHTS))
        (Path(tmp) / SUMMARY).write_text(json.dumps(dataclasses.asdict(summary)))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _read_summary(path: Path) -> TrainingSummary:
    fields = json.loads(path.read_text())
    fields["tower_weights"] = tuple(fields["tower_weights"])
    return TrainingSummary(**fields)


def train_network_on_ray(
    data: TrainingData,
    cfg: TwoTowerConfig,
    num_workers: int,
    verbose: bool = False,
    storage_path: str | Path | None = None,
) -> tuple[TwoTowerNet, TrainingSummary]:
    """:func:`~recops.models.two_tower.training.train_network` on ``num_workers`` Ray workers.

    Uses the running Ray cluster (``ray.init`` first to choose it; otherwise Ray
    Train starts a local one). Each worker runs ``cfg.num_threads`` torch threads
    and needs one CPU. ``storage_path``: where Ray Train keeps the run and its
    checkpoint (default: a temporary folder, removed afterwards).

    Returns the trained network (rebuilt here from rank 0's checkpoint) and rank
    0's training summary: its ``seconds`` are those of the training itself, as in
    one process (Ray's start-up of the workers and the checkpoint excluded).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1 (got {num_workers})")
    ray = _ray()
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    with tempfile.TemporaryDirectory(prefix="recops-ray-train-") as tmp:
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={
                "data": ray.put(data),
                "cfg": cfg.model_dump(),
                "verbose": verbose,
            },
            torch_config=TorchConfig(backend="gloo"),
            scaling_config=ScalingConfig(
                num_workers=num_workers,
                use_gpu=False,
                resources_per_worker={"CPU": 1},
            ),
            run_config=RunConfig(
                name="two_tower",
                storage_path=str(Path(storage_path).resolve()) if storage_path else tmp,
            ),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train finished without a checkpoint ({result.error!r})")
        with result.checkpoint.as_directory() as folder:
            state = load_file(str(Path(folder) / WEIGHTS))
            summary = _read_summary(Path(folder) / SUMMARY)
    net = build_network(data, cfg)
    net.load_state_dict(state, strict=True)
    net.eval()
    return net, summary
