"""From what the server logged to what analyses read.

The server writes three tables (see :mod:`recops.serving.eventlog`): ``exposures``
(one row per served slate), ``assignments`` (each unit's first assignment in an
experiment) and the ``events`` that answer a slate (they carry its ``request_id``).
This module turns them, as DataFrames, into

* :func:`shown_items`: one row per shown item with its reward, in the exposure
  schema of :mod:`recops.ope.exposures` (what ``recops ope`` and any OPE tool read),
  plus the experiment, variant and model version;
* :func:`unit_table`: one row per unit of an experiment, the per-unit table the A/B
  analysis of :mod:`recops.experiments.stats` reads (``unit_id``, ``variant``,
  ``requests``, ``impressions``, ``clicks``, their ``pre_`` values for CUPED, and
  ``timestamp``);
* :func:`to_obd`: the shown items in the Open Bandit Dataset's column layout.

Input frames (the CLI reads them from the log):

``exposures``
    ``request_id, timestamp, unit, experiment, variant, model, version, policy,
    items, propensities, scores, candidates, candidate_scores, sources`` (lists as
    lists, ``None`` where absent; ``policy`` as a dict).
``responses``
    ``request_id, item_id, event, timestamp``: events carrying a request id.
``assignments``
    ``unit, variant, timestamp``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from recops.experiments.config import HOLDOUT

#: Exposure columns :func:`shown_items` needs.
EXPOSURE_COLUMNS = (
    "request_id",
    "timestamp",
    "unit",
    "experiment",
    "variant",
    "model",
    "version",
    "policy",
    "items",
    "propensities",
    "scores",
    "candidates",
    "candidate_scores",
    "sources",
)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"`{name}` lacks column(s) {', '.join(missing)}")


def shown_items(
    exposures: pd.DataFrame, responses: pd.DataFrame, reward_event: str = "click"
) -> pd.DataFrame:
    """One row per shown item, rewarded 1.0 when a ``reward_event`` answers it.

    An event answers a shown item when it carries the slate's ``request_id`` and
    names the item; several answers of one item count once (reward 0 or 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``timestamp, unit, position, item_id, propensity, reward, request_id,
        score, experiment, variant, model, version, policy, candidates,
        candidate_scores`` (``policy`` JSON text, list columns as lists), and
        ``source`` (the arm that contributed the item) for interleaved slates; in
        exposure order then position.
    """
    _require(exposures, EXPOSURE_COLUMNS, "exposures")
    _require(responses, ("request_id", "item_id", "event"), "responses")
    rewards = responses[responses["event"] == reward_event]
    rewarded = set(
        zip(rewards["request_id"].astype(str), rewards["item_id"].astype(str), strict=True)
    )
    sizes = exposures["items"].map(len).to_numpy(dtype=np.int64)
    repeat = np.repeat(np.arange(len(exposures)), sizes)
    base = exposures.iloc[repeat].reset_index(drop=True)
    items = [str(i) for slate in exposures["items"] for i in slate]
    request_ids = base["request_id"].astype(str).tolist()
    frame = pd.DataFrame(
        {
            "timestamp": base["timestamp"].to_numpy(dtype=np.int64),
            "unit": base["unit"].astype(str).to_numpy(dtype=object),
            "position": np.concatenate([np.arange(n) for n in sizes]) if len(sizes) else [],
            "item_id": np.asarray(items, dtype=object),
            "propensity": np.array(
                [float(p) for slate in exposures["propensities"] for p in slate], dtype=np.float64
            ),
            "reward": np.array(
                [float((r, i) in rewarded) for r, i in zip(request_ids, items, strict=True)]
            ),
            "request_id": np.asarray(request_ids, dtype=object),
            "score": np.array([float(s) for slate in exposures["scores"] for s in slate]),
            "experiment": base["experiment"].to_numpy(dtype=object),
            "variant": base["variant"].to_numpy(dtype=object),
            "model": base["model"].astype(str).to_numpy(dtype=object),
            "version": base["version"].astype(str).to_numpy(dtype=object),
            "policy": [json.dumps(p, sort_keys=True) for p in base["policy"]],
        }
    )
    if exposures["sources"].notna().any():
        frame["source"] = [
            s for sources, items in zip(exposures["sources"], exposures["items"], strict=True)
            for s in (sources if isinstance(sources, list | tuple) else [None] * len(items))
        ]  # fmt: skip
    # Candidates only where the policy chose from more than it showed.
    if exposures["candidates"].notna().any():
        frame["candidates"] = [
            list(c) if isinstance(c, list | tuple) else list(s)
            for c, s in zip(base["candidates"], base["items"], strict=True)
        ]
        frame["candidate_scores"] = [
            list(c) if isinstance(c, list | tuple) else list(s)
            for c, s in zip(base["candidate_scores"], base["scores"], strict=True)
        ]
    frame["position"] = frame["position"].astype(np.int64)
    return frame


def unit_table(
    shown: pd.DataFrame,
    assignments: pd.DataFrame,
    experiment: str,
    *,
    pre_period_s: int = 14 * 86400,
) -> pd.DataFrame:
    """The per-unit table of ``experiment`` for the A/B analysis.

    A unit's metrics count what the experiment served it from its assignment on:
    ``requests`` (slates), ``impressions`` (shown items) and ``clicks`` (rewards).
    The ``pre_`` columns count what the unit was served in the ``pre_period_s``
    before its assignment (under any experiment, or none): the covariate of CUPED,
    which a treatment cannot have changed.

    Returns
    -------
    pandas.DataFrame
        ``unit_id, variant, timestamp, requests, impressions, clicks, pre_requests,
        pre_impressions, pre_clicks``, in assignment order; held-out units are
        left out (kept on control, they are not a variant).
    """
    _require(shown, ("timestamp", "unit", "request_id", "reward", "experiment"), "shown")
    _require(assignments, ("unit", "variant", "timestamp"), "assignments")
    units = assignments[assignments["variant"] != HOLDOUT].reset_index(drop=True)
    start = dict(zip(units["unit"].astype(str), units["timestamp"].astype(np.int64), strict=True))
    rows = shown[shown["unit"].astype(str).isin(start)]
    assigned_at = rows["unit"].astype(str).map(start).to_numpy(dtype=np.int64)
    stamps = rows["timestamp"].to_numpy(dtype=np.int64)
    during = rows[(stamps >= assigned_at) & (rows["experiment"] == experiment).to_numpy()]
    before = rows[(stamps < assigned_at) & (stamps >= assigned_at - pre_period_s)]
    out = pd.DataFrame(
        {
            "unit_id": units["unit"].astype(str),
            "variant": units["variant"].astype(str),
            "timestamp": units["timestamp"].astype(np.int64),
        }
    )
    for prefix, part in (("", during), ("pre_", before)):
        grouped = part.groupby(part["unit"].astype(str))
        counts = pd.DataFrame(
            {
                "requests": grouped["request_id"].nunique(),
                "impressions": grouped.size(),
                "clicks": grouped["reward"].sum(),
            }
        )
        for column in ("requests", "impressions", "clicks"):
            values = out["unit_id"].map(counts[column]).fillna(0.0)
            out[prefix + column] = values.to_numpy(dtype=np.float64)
    return out


def team_credits(shown: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Clicks credited to each arm of an interleaving experiment, per unit.

    Returns
    -------
    pandas.DataFrame
        ``unit_id`` and one column of credited clicks per arm (the ``source`` values),
        units in first-exposure order.
    """
    _require(shown, ("unit", "reward", "experiment"), "shown")
    rows = shown[shown["experiment"] == experiment]
    if "source" not in rows.columns or rows["source"].isna().all():
        raise ValueError(f"experiment {experiment!r} logged no interleaved slates")
    clicked = rows[rows["reward"] > 0]
    credits = clicked.groupby([clicked["unit"].astype(str), "source"]).size().unstack(fill_value=0)
    units = pd.Index(pd.unique(rows["unit"].astype(str)), name="unit_id")
    arms = [a for a in pd.unique(rows["source"].dropna())]
    out = credits.reindex(index=units, columns=arms, fill_value=0).astype(np.int64)
    return out.reset_index()


def to_obd(shown: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shown items in the Open Bandit Dataset's layout, and its ``item_context``.

    OBD identifies items by integers ``0..n-1`` (here in order of first appearance;
    ``item_context`` maps them back to recops ids in ``item_name``), counts positions
    from 1, and describes users with ``user_feature_*`` columns: recops has none of
    OBD's, so ``user_feature_0`` is the variant and the others are constant.

    Returns
    -------
    tuple of pandas.DataFrame
        The log (``timestamp, item_id, position, click, propensity_score,
        user_feature_0..3``) and ``item_context`` (``item_id, item_name,
        item_feature_0``).
    """
    _require(shown, ("timestamp", "item_id", "position", "reward", "propensity"), "shown")
    codes, names = pd.factorize(shown["item_id"].astype(str))
    stamps = pd.to_datetime(shown["timestamp"].to_numpy(dtype=np.int64), unit="s", utc=True)
    log = pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
            "item_id": codes.astype(np.int64),
            "position": shown["position"].to_numpy(dtype=np.int64) + 1,
            "click": shown["reward"].to_numpy(dtype=np.float64).astype(np.int64),
            "propensity_score": shown["propensity"].to_numpy(dtype=np.float64),
            "user_feature_0": shown.get("variant", pd.Series(["-"] * len(shown))).fillna("-"),
            "user_feature_1": "-",
            "user_feature_2": "-",
            "user_feature_3": "-",
        }
    )
    items = pd.DataFrame(
        {
            "item_id": np.arange(len(names), dtype=np.int64),
            "item_name": np.asarray(names, dtype=object),
            "item_feature_0": 0.0,
        }
    )
    return log, items
