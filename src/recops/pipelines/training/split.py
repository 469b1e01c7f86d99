"""Step ``split``: the positive events and the global temporal cutoff, as :class:`SplitData`.

The split itself (queries, targets, candidates) is rebuilt from it wherever it is
needed (:meth:`SplitData.split`): ``temporal_split`` is a function of the events
and the cutoff, so storing those two is storing the split, in Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from recops.data.schema import EVENT, IMPRESSION, ITEM_ID, TIMESTAMP, Dataset
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
        ``Split.describe()`` of the split, for reports, with ``train_end`` and
        ``data_end``: the newest training event's time and the newest event's.
    impressions:
        ``item_id, count``: how often each item was shown before the cutoff, when the
        data logs impressions (a server's exposures, a world's log); ``None`` when it
        does not. The model's exposure correction reads it.
    """

    events: pd.DataFrame
    items: pd.DataFrame
    cutoff: int
    n_cold_history: int
    summary: dict[str, Any]
    impressions: pd.DataFrame | None = None

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
    cutoff = int(made.params["cutoff"])
    times = positives[TIMESTAMP]
    # Where the training data ends and the data does: a gate judges the lag between.
    ends = {"train_end": int(times[times < cutoff].max()), "data_end": int(times.max())}
    return SplitData(
        events=positives,
        items=data.items,
        cutoff=cutoff,
        n_cold_history=config.n_cold_history,
        summary={**made.describe(), **ends},
        impressions=impression_counts(data.interactions, cutoff),
    )


def impression_counts(interactions: pd.DataFrame, before: int) -> pd.DataFrame | None:
    """``item_id, count`` of the ``impression`` events before ``before``; None when none."""
    shown = interactions[(interactions[EVENT] == IMPRESSION) & (interactions[TIMESTAMP] < before)]
    if shown.empty:
        return None
    counts = shown[ITEM_ID].value_counts(sort=False)
    return pd.DataFrame({ITEM_ID: counts.index.astype(str), "count": counts.to_numpy()})
