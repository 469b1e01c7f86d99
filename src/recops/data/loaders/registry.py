"""One entry point for the public datasets: ``load_dataset("ml-100k")``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from recops.data.download import dataset_dir
from recops.data.loaders.mind import load_mind
from recops.data.loaders.movielens import load_movielens_100k, load_movielens_latest_small
from recops.data.loaders.obd import load_obd
from recops.data.schema import Dataset

LOADERS: Mapping[str, Callable[..., Dataset]] = MappingProxyType(
    {
        "ml-100k": load_movielens_100k,
        "ml-latest-small": load_movielens_latest_small,
        "mind-small": load_mind,
        "obd": load_obd,
    }
)


def load_dataset(
    name: str, data_dir: str | Path | None = None, download: bool = False, **options: Any
) -> Dataset:
    """Load a public dataset by name, from the data folder or freshly downloaded.

    Parameters
    ----------
    name:
        ``"ml-100k"``, ``"ml-latest-small"``, ``"mind-small"`` or ``"obd"``.
    data_dir:
        The folder holding ``<name>/``; default ``$RECOPS_DATA_DIR``, else
        ``~/.cache/recops/data``.
    download:
        Download (and verify) the dataset when it is not there.
    **options:
        Passed to the dataset's loader, e.g. ``behavior_policy="bts"`` and
        ``campaign="men"`` for ``obd``.

    Returns
    -------
    Dataset
        The dataset in the recops schema.

    Raises
    ------
    ValueError
        For an unknown name.
    recops.data.errors.DatasetNotFoundError
        When the dataset is not there and ``download`` is false.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r} (expected one of {', '.join(LOADERS)})")
    folder = dataset_dir(name, data_dir, download=download)
    return LOADERS[name](folder, **options)
