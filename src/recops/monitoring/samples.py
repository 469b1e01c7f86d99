"""A window's feature values from where they are recorded: the event log or training data.

The *current* window always comes from the server's log. The *reference* window is the
training window: its clicks come from the training interactions when they are given
(what the model learnt from), else from the log; its prediction-side features (scores,
strategies) come from the log's exposures in that window, when the log has any.
"""

from __future__ import annotations

import pandas as pd

from recops.data.schema import EVENT, TIMESTAMP
from recops.monitoring.config import DriftConfig
from recops.monitoring.features import FeatureSample, Window, click_features, serving_features
from recops.monitoring.logs import ServingLog


def log_sample(
    log: ServingLog, window: Window, catalog: pd.DataFrame | None, config: DriftConfig
) -> FeatureSample:
    """Every feature of the log's rows in ``window`` (histories from the log's clicks)."""
    sample = FeatureSample(window)
    part = log.between(window.start, window.end)
    since = window.start - config.history_window_s
    history = log.between(since, window.end).of_event(config.click_event)
    click_features(
        sample,
        part.of_event(config.click_event),
        history,
        catalog,
        history_window_s=config.history_window_s,
    )
    serving_features(sample, part.exposures)
    return sample


def training_window(interactions: pd.DataFrame, source: str = "training interactions") -> Window:
    """The time span ``[first, last + 1)`` of ``interactions``."""
    if interactions.empty:
        raise ValueError("`interactions` is empty: no training window to compare with")
    stamps = interactions[TIMESTAMP]
    return Window(int(stamps.min()), int(stamps.max()) + 1, source)


def training_sample(
    interactions: pd.DataFrame,
    catalog: pd.DataFrame | None,
    config: DriftConfig,
    *,
    log: ServingLog | None = None,
    window: Window | None = None,
) -> FeatureSample:
    """The reference features of a model's training data (see the module docstring).

    Parameters
    ----------
    interactions:
        The training interactions (interaction schema); their clicks are the window's.
    catalog:
        Items with categories and publish times.
    config:
        The history window and the click event type.
    log:
        The server's log, for the scores and strategies it served in the window.
    window:
        The training window; the span of ``interactions`` when None.
    """
    window = window or training_window(interactions)
    sample = FeatureSample(window)
    clicks = interactions[interactions[EVENT] == config.click_event]
    inside = clicks[(clicks[TIMESTAMP] >= window.start) & (clicks[TIMESTAMP] < window.end)]
    history = clicks[clicks[TIMESTAMP] < window.end]
    click_features(sample, inside, history, catalog, history_window_s=config.history_window_s)
    if log is None:
        reason = "no event log given for the training window"
        sample.missing.update({"served_score": reason, "strategy": reason})
    else:
        serving_features(sample, log.between(window.start, window.end).exposures)
    return sample
