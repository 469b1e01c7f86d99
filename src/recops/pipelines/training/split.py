"""Step ``split``: the positive events and the global temporal cutoff, as :class:`SplitData`.

The split itself (queries, targets, candidates) is rebuilt from it wherever it is
needed (:meth:`SplitData.split`): ``temporal_split`` is a function of the events
and the cutoff, so storing those two is storing the split, in Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from recops.data.schema import EVENT, Dataset
from recops.evaluation import Split, implicit_only, temporal_split
from recops.pipelines.component import component
from recops.pipelines.training.config import SplitConfig


@dataclass(frozen=True)
class SplitData:
    """The positives (one per user and item, the earliest), the catalog and the cutoff.

    Parameters
    ----------
    events:
        Positive events, implicit (``value`` 1.0), sorted by time.
    items:
        The catalog (may be empty).
    cutoff:
        Training is every event strictly before it (unix seconds).
    n_cold_history:
        First test events that form a cold user's history.
    summary:
        ``Split.describe()`` of the split, for reports.
    """

    events: pd.DataFrame
    items: pd.DataFrame
    cutoff: int
    n_cold_history: int
    summary: dict[str, Any]

    def split(self) -> Split:
        """The :class:`~recops.evaluation.Split` these events and cutoff define."""
        return temporal_split(
            self.events,
            cutoff=self.cutoff,
            n_cold_history=self.n_cold_history,
            items=self.items if len(self.items) else None,
        )

    @property
    def train(self) -> pd.DataFrame:
        """The training events (before the cutoff)."""
        return self.events[self.events["timestamp"] < self.cutoff]


@component(code_deps=("recops.evaluation.splits",))
def split(data: Dataset, config: SplitConfig) -> SplitData:
    """Keep the positives, then cut at the ``quantile`` of their times."""
    events = data.interactions[data.interactions[EVENT].isin(config.events)]
    positives = implicit_only(events, min_rating=config.min_rating)
    made = temporal_split(
        positives,
        config.quantile,
        n_cold_history=config.n_cold_history,
        items=data.items if len(data.items) else None,
    )
    return SplitData(
        events=positives,
        items=data.items,
        cutoff=int(made.params["cutoff"]),
        n_cold_history=config.n_cold_history,
        summary=made.describe(),
    )
