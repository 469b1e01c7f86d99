"""From data frames to the indexed data the two-tower trains on.

:func:`prepare` checks the interactions (and the optional catalog and impressions)
against the schema, builds the vocabularies of items, users and categories, and
indexes everything :class:`~recops.models.two_tower.data.TrainingData` holds: the
users' histories, the catalog's content features, the causal popularity counts of
the prior and the exposure correction's click weights. The model keeps the
:class:`Events` to rebuild the counts when it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.data.schema import CATEGORIES, ITEM_ID, PUBLISH_TIME, TIMESTAMP, TITLE, USER_ID
from recops.data.validation import check_unix_seconds
from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.data import TrainingData
from recops.models.two_tower.features import (
    CatalogFeatures,
    TimeCounts,
    build_catalog_features,
    build_sequences,
    build_time_counts,
)


@dataclass(frozen=True)
class Events:
    """The training events as indices, kept with the model.

    They rebuild the causal popularity counts of ``item_prior`` and give every
    known user's history to batch ``recommend`` (seen-item exclusion included).
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` builds: the training data, its vocabularies, the titles.

    ``titles`` holds one title per item of ``item_ids`` (``""`` when it has none).
    """

    data: TrainingData
    item_ids: np.ndarray
    categories: list[str]
    user_ids: np.ndarray
    events: Events
    titles: np.ndarray


def check_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"interactions must be a pandas DataFrame (got {type(interactions)!r})")
    missing = [c for c in (USER_ID, ITEM_ID, TIMESTAMP) if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"interactions must have columns user_id, item_id, timestamp (missing {missing})"
        )
    if len(interactions) < 2:
        raise ValueError(f"interactions must have at least 2 rows (got {len(interactions)})")
    for col in (USER_ID, ITEM_ID, TIMESTAMP):
        nulls = int(interactions[col].isna().sum())
        if nulls:
            raise ValueError(f"interactions column {col!r} has {nulls} missing values")
    if not pd.api.types.is_integer_dtype(interactions[TIMESTAMP]):
        raise ValueError(
            "interactions column 'timestamp' must hold integer unix seconds "
            f"(got dtype {interactions[TIMESTAMP].dtype})"
        )
    check_unix_seconds(interactions[TIMESTAMP].to_numpy(), "interactions column 'timestamp'")
    return pd.DataFrame(
        {
            USER_ID: interactions[USER_ID].astype(str).to_numpy(dtype=object),
            ITEM_ID: interactions[ITEM_ID].astype(str).to_numpy(dtype=object),
            TIMESTAMP: interactions[TIMESTAMP].to_numpy(dtype=np.int64),
        }
    )


def catalog_columns(
    items: pd.DataFrame | None,
) -> tuple[dict[str, str], dict[str, list[str]], dict[str, int]]:
    """Titles, category lists and publish times by item id (empty without catalog)."""
    if items is None or len(items) == 0:
        return {}, {}, {}
    if ITEM_ID not in items.columns:
        raise ValueError(f"items (the catalog) must have an item_id column (got {list(items)})")
    ids = items[ITEM_ID].astype(str).tolist()
    titles: dict[str, str] = {}
    if TITLE in items.columns:
        titles = {
            i: t for i, t in zip(ids, items[TITLE].tolist(), strict=True) if isinstance(t, str)
        }
    cats: dict[str, list[str]] = {}
    if CATEGORIES in items.columns:
        for i, c in zip(ids, items[CATEGORIES].tolist(), strict=True):
            if c is not None and not isinstance(c, float):
                cats[i] = [str(x) for x in c]
    pub: dict[str, int] = {}
    if PUBLISH_TIME in items.columns:
        for i, p in zip(ids, items[PUBLISH_TIME].tolist(), strict=True):
            if p is not None and not pd.isna(p):
                pub[i] = int(p)
        check_unix_seconds(np.fromiter(pub.values(), np.int64), "items column 'publish_time'")
    return titles, cats, pub


def prepare(
    config: TwoTowerConfig,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    impressions: pd.DataFrame | None = None,
) -> Prepared:
    """The indexed data :meth:`TwoTower.fit` trains on: vocabularies, histories, counts.

    Raises ``TypeError`` / ``ValueError`` naming the column and what was wrong
    when ``interactions`` or the catalog do not fit the schema.
    """
    frame = check_interactions(interactions)
    titles, cats, pub = catalog_columns(items)
    item_ids = np.array(sorted(set(frame[ITEM_ID]) | set(titles) | set(cats)), dtype=object)
    categories = sorted({c for cs in cats.values() for c in cs})
    user_ids = np.array(sorted(set(frame[USER_ID])), dtype=object)
    lookup = {item: i + 1 for i, item in enumerate(item_ids)}
    user_lookup = {u: i + 1 for i, u in enumerate(user_ids)}
    events = Events(
        users=frame[USER_ID].map(user_lookup).to_numpy(dtype=np.int64),
        items=frame[ITEM_ID].map(lookup).to_numpy(dtype=np.int64),
        times=frame[TIMESTAMP].to_numpy(dtype=np.int64),
    )
    catalog = build_catalog_features(
        item_ids,
        {c: i + 1 for i, c in enumerate(categories)},
        titles,
        cats,
        pub,
        config.text_buckets,
    )
    data = TrainingData(
        sequences=build_sequences(events.users, events.items, events.times, config.max_history),
        catalog=catalog,
        counts=time_counts(config, events, catalog, len(item_ids)),
        n_items=len(item_ids),
        n_users=len(user_ids),
        n_categories=len(categories),
        item_weights=exposure_weights(impressions, lookup, config.exposure_debias),
    )
    item_titles = np.array([titles.get(i, "") for i in item_ids], dtype=object)
    return Prepared(data, item_ids, categories, user_ids, events, item_titles)


def exposure_weights(
    impressions: pd.DataFrame | None, lookup: dict[str, int], eta: float
) -> np.ndarray | None:
    """Click weights ``(n_i / median n)^(-η)`` by item (see ``exposure_debias``)."""
    if impressions is None or eta == 0 or len(impressions) == 0:
        return None
    if not isinstance(impressions, pd.DataFrame) or ITEM_ID not in impressions.columns:
        raise ValueError(
            "impressions must be a DataFrame with an item_id column (and optionally "
            f"count), got {type(impressions).__name__}"
            + (
                f" with columns {list(impressions.columns)}"
                if hasattr(impressions, "columns")
                else ""
            )
        )
    rows = impressions[ITEM_ID].map(lookup)
    known = rows.notna().to_numpy()
    weight = (
        impressions["count"].to_numpy(dtype=np.float64)
        if "count" in impressions.columns
        else np.ones(len(impressions))
    )
    if (weight < 0).any():
        raise ValueError("impressions column 'count' must not be negative")
    counts = np.zeros(len(lookup) + 1, dtype=np.float64)
    np.add.at(counts, rows[known].to_numpy(dtype=np.int64), weight[known])
    seen = counts > 0
    if not seen.any():
        return None
    weights = np.ones_like(counts)
    # Items never logged as shown (catalog-only, or clicked outside a logged
    # slate) have no propensity estimate: neutral weight.
    weights[seen] = np.clip((counts[seen] / np.median(counts[seen])) ** (-eta), 0.1, 10.0)
    return weights.astype(np.float32)


def time_counts(
    config: TwoTowerConfig, events: Events, catalog: CatalogFeatures, n_items: int
) -> TimeCounts | None:
    """The causal popularity counts of the prior (``None`` without ``time_prior``)."""
    if not config.time_prior:
        return None
    return build_time_counts(
        events.items,
        events.times,
        n_items,
        config.prior_windows,
        config.prior_max_cells,
        publish_time=catalog.publish_time,
    )
