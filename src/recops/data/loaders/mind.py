"""MIND (Microsoft News Dataset) in the recops schema.

``news.tsv`` becomes the catalog: ``categories`` is ``[category, subcategory]``,
``title`` the title, and ``abstract`` and ``url`` are kept as item features.

``behaviors.tsv`` becomes events. Choices, so that every model and estimator reads
MIND the same way as the other datasets:

* every candidate shown in an impression is an ``"impression"`` event whose
  ``value`` is its click label (1.0 clicked, 0.0 not), so the click-through rate is
  ``value.mean()`` over impressions, as for the Open Bandit Dataset;
* every clicked candidate is *also* a ``"click"`` event (value 1.0) at the same time,
  so a model that learns from clicks finds them as in any click log;
* the history (clicks before the logging period, which MIND gives without times) is
  emitted once per user as ``"click"`` events dated just before the user's first
  impression: the i-th of n history items at ``t0 - (n - i)`` seconds, which keeps
  their order and keeps them strictly before anything logged. MIND repeats the same
  history on each impression of a user; later clicks are already events of their
  own. These rows have ``history=True``.

Context columns: ``impression_id`` (str; empty for history rows), ``position`` (the
0-based place of the candidate in the impression list; missing for history rows)
and ``history`` (bool). MIND's times have no zone; they are read as UTC.

Reference: Fangzhao Wu et al. MIND: A Large-scale Dataset for News Recommendation.
ACL 2020. Released under the Microsoft Research License Terms; recops downloads it
at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recops.data.errors import DataValidationError, Problem
from recops.data.loaders.delimited import RawTable, read_delimited
from recops.data.schema import (
    CATEGORIES,
    EVENT,
    ITEM_ID,
    PUBLISH_TIME,
    TIMESTAMP,
    TITLE,
    USER_ID,
    VALUE,
    Dataset,
)
from recops.data.validation import (
    DEFAULT_MAX_PROBLEMS,
    coerce_unix_seconds,
    validate_interactions,
    validate_items,
)

NEWS_COLUMNS = (
    "news_id",
    "category",
    "subcategory",
    "title",
    "abstract",
    "url",
    "title_entities",
    "abstract_entities",
)
BEHAVIOR_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def load_mind_news(path: str | Path) -> pd.DataFrame:
    """Read ``news.tsv`` as a catalog.

    Parameters
    ----------
    path:
        The ``news.tsv`` file.

    Returns
    -------
    pandas.DataFrame
        Items with ``categories = [category, subcategory]``, ``title``, no
        ``publish_time`` (MIND has none), and ``abstract`` and ``url`` features.
    """
    table = read_delimited(path, sep="\t", names=NEWS_COLUMNS, quoted=False)
    raw = table.frame
    categories = raw["category"].fillna("") + "|" + raw["subcategory"].fillna("")
    items, _ = validate_items(
        pd.DataFrame(
            {
                ITEM_ID: raw["news_id"],
                TITLE: raw["title"],
                CATEGORIES: categories,
                PUBLISH_TIME: pd.Series(pd.NA, index=raw.index, dtype="Int64"),
                "abstract": raw["abstract"].fillna("").astype(str),
                "url": raw["url"].fillna("").astype(str),
            }
        ),
        source=table.source,
        lines=table.lines,
    )
    return items


def _impression_times(table: RawTable) -> np.ndarray:
    """Impression times as int64 unix seconds; raises naming each unreadable line."""
    raw = table.frame["time"]
    stamps = pd.to_datetime(raw, format=_TIME_FORMAT, errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        raise DataValidationError(
            [
                Problem(
                    table.source,
                    int(table.lines[i]),
                    "time",
                    "bad_timestamp",
                    f"expected a time like '11/15/2019 8:55:22 AM', got {raw.iloc[i]!r}",
                )
                for i in bad[:DEFAULT_MAX_PROBLEMS]
            ],
            n_total=len(bad),
        )
    seconds, _ = coerce_unix_seconds(stamps.dt.tz_localize("UTC"))
    return seconds.to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class _Flat:
    """Space-separated lists of one column, flattened: tokens and the row of each."""

    tokens: pd.Series
    row: np.ndarray
    index_in_row: np.ndarray


def _flatten(column: pd.Series) -> _Flat:
    lists = column.fillna("").str.split().to_list()
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    tokens = np.concatenate(lists) if counts.sum() else np.array([], dtype=str)
    row = np.repeat(np.arange(len(lists)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    index_in_row = np.arange(len(tokens)) - starts
    return _Flat(pd.Series(tokens, dtype=str), row, index_in_row)


def _candidate_events(table: RawTable, times: np.ndarray) -> dict[str, np.ndarray]:
    """One ``impression`` row per candidate, plus a ``click`` row per clicked one."""
    raw = table.frame
    flat = _flatten(raw["impressions"])
    # A token without "-0"/"-1" keeps its whole text as the item and gets no value,
    # so the value check reports its line.
    labelled = flat.tokens.str.fullmatch(r".+-[01]").to_numpy(dtype=bool)
    item = flat.tokens.str.slice(0, -2).where(labelled, flat.tokens).to_numpy(dtype=object)
    clicked = flat.tokens.str.endswith("-1").to_numpy(dtype=bool) & labelled
    value = np.where(labelled, clicked.astype(np.float64), np.nan)
    # Each clicked candidate appears twice: as an impression, then as a click.
    take = np.concatenate([np.arange(len(item)), np.flatnonzero(clicked)])
    row = flat.row[take]
    return {
        USER_ID: raw["user_id"].to_numpy(dtype=object)[row],
        ITEM_ID: item[take],
        EVENT: np.where(np.arange(len(take)) < len(item), "impression", "click"),
        VALUE: value[take],
        TIMESTAMP: times[row],
        "impression_id": raw["impression_id"].to_numpy(dtype=object)[row],
        "position": flat.index_in_row[take],
        "history": np.zeros(len(take), dtype=bool),
        "_line": table.lines[row],
    }


def _history_events(table: RawTable, times: np.ndarray) -> dict[str, np.ndarray]:
    """Each user's history once, as clicks dated just before their first impression."""
    raw = table.frame
    by_time = np.argsort(times, kind="stable")
    first_rows = by_time[~raw["user_id"].iloc[by_time].duplicated().to_numpy()]
    flat = _flatten(raw["history"].iloc[first_rows].reset_index(drop=True))
    row = first_rows[flat.row]
    length = np.bincount(flat.row, minlength=len(first_rows))[flat.row]
    n = len(row)
    return {
        USER_ID: raw["user_id"].to_numpy(dtype=object)[row],
        ITEM_ID: flat.tokens.to_numpy(dtype=object),
        EVENT: np.full(n, "click", dtype=object),
        VALUE: np.ones(n),
        TIMESTAMP: times[row] - (length - flat.index_in_row),
        "impression_id": np.full(n, "", dtype=object),
        "position": np.full(n, -1, dtype=np.int64),
        "history": np.ones(n, dtype=bool),
        "_line": table.lines[row],
    }


def load_mind_behaviors(path: str | Path) -> pd.DataFrame:
    """Read ``behaviors.tsv`` as interactions (see the module notes for the choices).

    Parameters
    ----------
    path:
        The ``behaviors.tsv`` file.

    Returns
    -------
    pandas.DataFrame
        Events sorted by time with context columns ``impression_id``, ``position``
        and ``history``.

    Raises
    ------
    DataValidationError
        When a line does not parse (a bad time, a candidate without ``-0``/``-1``).
    """
    table = read_delimited(path, sep="\t", names=BEHAVIOR_COLUMNS, quoted=False)
    times = _impression_times(table)
    parts = [_history_events(table, times), _candidate_events(table, times)]
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # Sort the arrays once here: sorting the frame later would copy every string column.
    order = np.argsort(columns[TIMESTAMP], kind="stable")
    columns = {k: v[order] for k, v in columns.items()}
    position = pd.array(columns.pop("position"), dtype="Int64")
    position[columns["history"]] = pd.NA
    lines = columns.pop("_line")
    events = pd.DataFrame(columns).assign(position=position)
    order_of_columns = [USER_ID, ITEM_ID, EVENT, VALUE, TIMESTAMP, "impression_id"]
    events = events[[*order_of_columns, "position", "history"]]
    interactions, _ = validate_interactions(events, source=table.source, lines=lines)
    return interactions


def load_mind(folder: str | Path, name: str = "mind-small") -> Dataset:
    """Load a MIND split from its folder (``behaviors.tsv`` and ``news.tsv``).

    Parameters
    ----------
    folder:
        The unpacked split, e.g. ``MINDsmall_train``.
    name:
        The dataset name for reports.

    Returns
    -------
    Dataset
        Events as described in the module notes, the news catalog, and the users
        seen in the behaviors (ids only: MIND has no user features). Events are not
        checked against the catalog: a split's ``news.tsv`` need not list every news
        id of other splits' histories.
    """
    folder = Path(folder)
    missing = [f for f in ("behaviors.tsv", "news.tsv") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a MIND folder: missing {', '.join(missing)}")
    items = load_mind_news(folder / "news.tsv")
    interactions = load_mind_behaviors(folder / "behaviors.tsv")
    users = pd.DataFrame({USER_ID: pd.unique(interactions[USER_ID])}).astype(str)
    return Dataset(interactions, items, users, name=name)
