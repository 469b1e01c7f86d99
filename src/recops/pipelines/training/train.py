"""Step ``train``: fit the multi-task two-tower model on the training part of the split.

The model is fitted on the catalog known at the cutoff; items published later are
embedded from their content (``fit_on_split``), so the model that is evaluated is
the one a deployed system would have had.
"""

from __future__ import annotations

from recops.evaluation.tuning import fit_on_split
from recops.models.two_tower import TwoTower, TwoTowerConfig
from recops.pipelines.component import component
from recops.pipelines.training.split import SplitData


@component(
    code_deps=("recops.models.two_tower", "recops.evaluation", "recops.pipelines.training.split")
)
def train(data: SplitData, params: TwoTowerConfig) -> TwoTower:
    """Fit ``TwoTower(params)`` on the events before the cutoff."""
    split = data.split()
    fit_params = {} if data.impressions is None else {"impressions": data.impressions}
    model = fit_on_split(
        TwoTower(config=params), split, data.items if len(data.items) else None, **fit_params
    )
    assert isinstance(model, TwoTower)
    return model
