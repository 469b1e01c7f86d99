"""Entry points: a whole world with its logged data, or only a (large) catalog."""

from __future__ import annotations

import pandas as pd

from recops.data.schema import Dataset
from recops.data.world.catalog import generate_items
from recops.data.world.config import WorldConfig
from recops.data.world.truth import World, catalog_rng


def generate_world(
    config: WorldConfig | None = None, *, progress: bool = False
) -> tuple[World, Dataset]:
    """Draw a world and simulate its logs under the built-in logging policy.

    Parameters
    ----------
    config:
        The world to draw; the default demo world when None.
    progress:
        Show a progress bar over the simulated hours.

    Returns
    -------
    (World, Dataset)
        The ground truth and the logged interactions, catalog and users. The same
        config gives identical tables (and byte-identical Parquet files).
    """
    world = World.from_config(config or WorldConfig())
    return world, world.generate(progress=progress)


def generate_catalog(config: WorldConfig) -> pd.DataFrame:
    """Only the catalog of ``config``: the fast path for 100k–1M item benchmarks.

    It is the same catalog that :func:`generate_world` draws for ``config`` (the
    catalog has its own random stream), without drawing any users or events.
    """
    return generate_items(config, catalog_rng(config.seed)).to_frame()
