"""Batch jobs of a trained two-tower model: catalog embedding and recommendation export.

Both run in this process or on Ray Data (``workers=N``: N actors, each loading the
model once from its folder), over chunks of ``batch_size`` rows, and write a folder
of Parquet parts, one per chunk (``pandas.read_parquet(folder)`` reads them back):
memory stays bounded by a chunk whatever the size of the catalog or the user list.
Each chunk is computed by the same function on both paths (:class:`ItemEmbedder`,
:class:`Recommendations`), so their outputs are equal row for row.

``embed_catalog``
    ``item_id, vector`` (float32, unit norm) per catalog item: the trained vector
    for an item the model knows, else the vector its content gives
    (:meth:`~recops.models.two_tower.TwoTower.with_items`: categories, title words,
    publish time). What an ANN index of a large catalog is built from.
``export_recommendations``
    ``user_id, rank, item_id, score``: the top ``k`` of each user from their
    training history (:meth:`~recops.models.two_tower.TwoTower.recommend`), for the
    daily batch that real-time serving is compared with.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recops.data.schema import ITEM_ID, USER_ID
from recops.optional import import_ray

if TYPE_CHECKING:
    from recops.models.two_tower import TwoTower

#: Rows per chunk (and per Parquet part).
BATCH_SIZE = 8_192


@dataclass(frozen=True)
class BatchResult:
    """What a batch job wrote.

    Parameters
    ----------
    out:
        The folder of Parquet parts.
    rows:
        Rows written.
    inputs:
        Items embedded or users recommended for.
    seconds:
        Wall time of the job.
    workers:
        Ray actors (None: in this process).
    """

    out: Path
    rows: int
    inputs: int
    seconds: float
    workers: int | None

    @property
    def per_second(self) -> float:
        """Inputs per second."""
        return self.inputs / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "out": str(self.out),
            "rows": self.rows,
            "inputs": self.inputs,
            "seconds": self.seconds,
            "workers": self.workers,
            "per_second": self.per_second,
        }


def _load(model_dir: str | Path) -> TwoTower:
    from recops.models.two_tower import TwoTower

    return TwoTower.load(model_dir)


class ItemEmbedder:
    """One chunk of a catalog → ``item_id, vector``; the model is loaded once per instance."""

    def __init__(self, model_dir: str) -> None:
        self.model = _load(model_dir)

    def __call__(self, chunk: pd.DataFrame) -> pd.DataFrame:
        model = self.model
        ids = chunk[ITEM_ID].astype(str).tolist()
        # Items the model does not know are embedded from their content on a copy: the
        # loaded model stays as it is for the next chunk.
        grown, _ = model.with_items(chunk) if any(i not in model.item_index for i in ids) else (
            model, None)  # fmt: skip
        rows = np.fromiter((grown.item_index[i] for i in ids), dtype=np.int64, count=len(ids))
        vectors = grown.item_vectors()[rows]
        return pd.DataFrame({ITEM_ID: ids, "vector": list(vectors)})


class Recommendations:
    """One chunk of users → their top ``k`` (``user_id, rank, item_id, score``)."""

    def __init__(
        self, model_dir: str, k: int, exclude_seen: bool = True, now: int | None = None
    ) -> None:
        self.model = _load(model_dir)
        self.k, self.exclude_seen, self.now = k, exclude_seen, now

    def __call__(self, chunk: pd.DataFrame) -> pd.DataFrame:
        users = chunk[USER_ID].astype(str).tolist()
        found = self.model.recommend(users, self.k, exclude_seen=self.exclude_seen, now=self.now)
        return found.reset_index(drop=True)


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size].reset_index(drop=True)


def _fresh(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out}: exists and is not a folder of Parquet parts")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def _check(batch_size: int, workers: int | None) -> None:
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int (got {batch_size})")
    if workers is not None and workers < 1:
        raise ValueError(f"`workers` must be a positive int or None (got {workers})")


class _Parts:
    """Computes a chunk with ``job`` and writes it as part ``_part`` of ``out``; its row count.

    The parts are written where they are computed (an actor on Ray), so nothing but
    the counts travels back to the driver.
    """

    def __init__(
        self, job: type[ItemEmbedder] | type[Recommendations], args: tuple[Any, ...], out: str
    ) -> None:
        self.compute = job(*args)
        self.out = Path(out)

    def __call__(self, chunk: pd.DataFrame) -> pd.DataFrame:
        part = int(chunk[_PART].iloc[0])
        rows = self.compute(chunk.drop(columns=_PART))
        rows.to_parquet(self.out / f"part-{part:06d}.parquet", index=False)
        return pd.DataFrame({_PART: [part], "rows": [len(rows)]})


_PART = "_part"


def _run(
    frame: pd.DataFrame,
    job: type[ItemEmbedder] | type[Recommendations],
    args: tuple[Any, ...],
    out: Path,
    batch_size: int,
    workers: int | None,
) -> BatchResult:
    started = time.perf_counter()
    _fresh(out)
    chunks = [chunk.assign(**{_PART: n}) for n, chunk in enumerate(_chunks(frame, batch_size))]
    if workers is None:
        parts = _Parts(job, args, str(out))
        counts = [int(parts(chunk)["rows"].iloc[0]) for chunk in chunks]
    else:
        counts = _on_ray(chunks, job, args, out, workers)
    return BatchResult(out, sum(counts), len(frame), time.perf_counter() - started, workers)


def _on_ray(
    chunks: list[pd.DataFrame],
    job: type[ItemEmbedder] | type[Recommendations],
    args: tuple[Any, ...],
    out: Path,
    workers: int,
) -> list[int]:
    ray = import_ray("data", needed_by="batch jobs on Ray", install="ray[data]")
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    # One block per chunk (no shuffle, which would need CPUs the actors hold), each
    # block a whole batch of the actors' map.
    dataset = ray.data.from_pandas(chunks)
    counted = dataset.map_batches(
        _Parts,
        fn_constructor_args=(job, args, str(out)),
        batch_size=None,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    return [int(row["rows"]) for row in counted.iter_rows()]


def embed_catalog(
    model_dir: str | Path,
    catalog: pd.DataFrame,
    out: str | Path,
    *,
    workers: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> BatchResult:
    """Embed every item of ``catalog`` (see the module docstring) into ``out``.

    Parameters
    ----------
    model_dir:
        A two-tower model folder (``recops train``, a model repository version).
    catalog:
        ``item_id`` and, for items the model does not know, any of ``title``,
        ``categories``, ``publish_time``.
    out:
        The folder to write (replaced if it exists).
    workers:
        Ray Data actors; None runs in this process.
    batch_size:
        Items per chunk.
    """
    _check(batch_size, workers)
    if not isinstance(catalog, pd.DataFrame) or ITEM_ID not in catalog.columns:
        raise ValueError("`catalog` must be a DataFrame with an item_id column")
    frame = catalog.drop_duplicates(ITEM_ID, keep="last").reset_index(drop=True)
    return _run(frame, ItemEmbedder, (str(model_dir),), Path(out), batch_size, workers)


def export_recommendations(
    model_dir: str | Path,
    user_ids: Sequence[str],
    out: str | Path,
    *,
    k: int = 100,
    exclude_seen: bool = True,
    now: int | None = None,
    workers: int | None = None,
    batch_size: int = 1_024,
) -> BatchResult:
    """The top ``k`` of every user in ``user_ids`` (see the module docstring) into ``out``."""
    from recops.models.base import validate_k

    _check(batch_size, workers)
    k = validate_k(k)
    if isinstance(user_ids, str) or len(user_ids) == 0:
        raise ValueError("`user_ids` must be a non-empty sequence of user ids")
    frame = pd.DataFrame({USER_ID: [str(u) for u in user_ids]})
    args = (str(model_dir), k, exclude_seen, now)
    return _run(frame, Recommendations, args, Path(out), batch_size, workers)
