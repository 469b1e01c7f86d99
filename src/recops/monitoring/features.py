"""The features drift is measured on, and how each window's values are computed.

Item side, from clicks and the catalog:

``click_category`` (categorical)
    The main category (the catalog's first) of every clicked item: the mix of what
    users read. Items missing from the catalog count as ``<unknown>``.
``item_age_hours`` (numeric)
    ``(click time − publish time) / 3600`` of every click on an item with a publish time.

User side, from clicks:

``history_length`` (numeric)
    At every click, the number of the user's earlier clicks within ``history_window_s``
    (a window, not all time, so that the value is stationary once the log is older than
    the window, and a change means users who read more or less).

Prediction side, from the server's exposures (absent from plain training data):

``served_score`` (numeric)
    The model's score of every shown item of every served slate. Scores of different
    model versions are not comparable: the drift report says when the windows differ.
``strategy`` (categorical)
    The server's strategy per answered request (``personalized``, ``cold_start``, …):
    its drift is the share of cold-start answers.

Clicks come from training interactions (the reference window) or from the event log
(either window); the history they are counted in comes from the same source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from recops.data.schema import CATEGORIES, ITEM_ID, PUBLISH_TIME, TIMESTAMP, USER_ID

Kind = Literal["numeric", "categorical"]
Side = Literal["item", "user", "prediction"]

UNKNOWN_CATEGORY = "<unknown>"


@dataclass(frozen=True)
class Feature:
    """One monitored feature: its name, kind (which statistics apply), side and meaning."""

    name: str
    kind: Kind
    side: Side
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("click_category", "categorical", "item", "main category of each clicked item"),
    Feature("item_age_hours", "numeric", "item", "hours from publish time to each click"),
    Feature("history_length", "numeric", "user", "the user's earlier clicks in the window"),
    Feature("served_score", "numeric", "prediction", "model score of each shown item"),
    Feature("strategy", "categorical", "prediction", "server strategy of each answered request"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


@dataclass(frozen=True)
class Window:
    """A time range ``[start, end)`` in unix seconds, and where its data came from."""

    start: int
    end: int
    source: str

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                f"a window must end after it starts (got start={self.start}, end={self.end})"
            )

    def to_dict(self) -> dict[str, int | str]:
        """``start``, ``end`` and ``source``."""
        return {"start": self.start, "end": self.end, "source": self.source}


@dataclass
class FeatureSample:
    """Every feature's values in one window, and why the features without values lack them.

    Parameters
    ----------
    window:
        The time range the values come from.
    values:
        Feature name → values (float64 for numeric features, ``str`` objects otherwise).
    missing:
        Feature name → why it has no values here.
    versions:
        The model versions (``name/version``) that served the window's exposures.
    """

    window: Window
    values: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    versions: tuple[str, ...] = ()


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"`{name}` lacks column(s) {', '.join(absent)}")


def history_counts(clicks: pd.DataFrame, history: pd.DataFrame, window_s: int) -> np.ndarray:
    """Per row of ``clicks``, the rows of ``history`` of the same user in ``[t − window_s, t)``."""
    _check_columns(clicks, (USER_ID, TIMESTAMP), "clicks")
    _check_columns(history, (USER_ID, TIMESTAMP), "history")
    users = pd.Index(pd.unique(pd.concat([history[USER_ID], clicks[USER_ID]]).astype(str)))
    h_user = users.get_indexer(history[USER_ID].astype(str)).astype(np.int64)
    c_user = users.get_indexer(clicks[USER_ID].astype(str)).astype(np.int64)
    h_time = history[TIMESTAMP].to_numpy(dtype=np.int64)
    c_time = clicks[TIMESTAMP].to_numpy(dtype=np.int64)
    if len(c_time) == 0:
        return np.zeros(0, dtype=np.int64)
    # One sorted key (user, time) answers every (user, interval) query by bisection.
    low = min(h_time.min(initial=c_time.min()), c_time.min()) - window_s
    span = max(h_time.max(initial=c_time.max()), c_time.max()) - low + 1
    keys = np.sort(h_user * span + (h_time - low))
    base = c_user * span - low
    upper = np.searchsorted(keys, base + c_time, side="left")
    lower = np.searchsorted(keys, base + c_time - window_s, side="left")
    return (upper - lower).astype(np.int64)


def click_features(
    sample: FeatureSample,
    clicks: pd.DataFrame,
    history: pd.DataFrame,
    catalog: pd.DataFrame | None,
    *,
    history_window_s: int,
) -> None:
    """Add the item- and user-side features of ``clicks`` (in the window) to ``sample``.

    Parameters
    ----------
    clicks:
        ``user_id, item_id, timestamp`` of the window's clicks.
    history:
        ``user_id, timestamp`` of the clicks the history is counted in (the source's
        clicks before the window's end).
    catalog:
        ``item_id, categories, publish_time``; without it the item-side features are
        reported missing.
    """
    _check_columns(clicks, (USER_ID, ITEM_ID, TIMESTAMP), "clicks")
    sample.values["history_length"] = history_counts(clicks, history, history_window_s).astype(
        np.float64
    )
    if catalog is None:
        for name in ("click_category", "item_age_hours"):
            sample.missing[name] = "no catalog given"
        return
    _check_columns(catalog, (ITEM_ID, CATEGORIES, PUBLISH_TIME), "catalog")
    items = catalog.drop_duplicates(ITEM_ID).set_index(catalog[ITEM_ID].astype(str).rename(None))
    main = items[CATEGORIES].map(
        lambda c: str(c[0]) if c is not None and len(c) else UNKNOWN_CATEGORY
    )
    clicked = clicks[ITEM_ID].astype(str)
    sample.values["click_category"] = (
        clicked.map(main).fillna(UNKNOWN_CATEGORY).to_numpy(dtype=object)
    )
    published = clicked.map(pd.to_numeric(items[PUBLISH_TIME], errors="coerce"))
    age = (clicks[TIMESTAMP].to_numpy(dtype=np.float64) - published.to_numpy(np.float64)) / 3600.0
    sample.values["item_age_hours"] = age[np.isfinite(age)]
    if np.isfinite(age).sum() == 0 and len(age):
        sample.missing["item_age_hours"] = "no clicked item has a publish time in the catalog"
        del sample.values["item_age_hours"]


def serving_features(sample: FeatureSample, exposures: pd.DataFrame) -> None:
    """Add the prediction-side features of the window's exposures to ``sample``.

    ``exposures`` has ``model, version, scores`` (a list per slate) and ``context``
    (a dict with ``strategy``, or None).
    """
    _check_columns(exposures, ("model", "version", "scores", "context"), "exposures")
    if exposures.empty:
        reason = "no exposures logged in the window"
        sample.missing["served_score"] = reason
        sample.missing["strategy"] = reason
        return
    scores = np.asarray([float(s) for slate in exposures["scores"] for s in slate], dtype=float)
    sample.values["served_score"] = scores[np.isfinite(scores)]
    strategies = [
        str(c.get("strategy", "<none>")) if isinstance(c, dict) else "<none>"
        for c in exposures["context"]
    ]
    sample.values["strategy"] = np.asarray(strategies, dtype=object)
    labels = exposures["model"].astype(str) + "/" + exposures["version"].astype(str)
    sample.versions = tuple(sorted(pd.unique(labels)))
