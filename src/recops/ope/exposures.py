"""The exposure log recops writes, and how it becomes :class:`LoggedFeedback`.

Schema: one row per shown item (Parquet, CSV or JSON Lines), columns

============================ ========== ==================================================
column                       type       meaning
============================ ========== ==================================================
``timestamp``                int        unix seconds of the request
``unit``                     str        randomisation unit (the user id)
``position``                 int        0-based slot of the item in the slate
``item_id``                  str        the shown item
``propensity``               float      P(logging policy shows ``item_id`` at
                                        ``position``), in (0, 1]
``reward``                   float      outcome (1.0 click, 0.0 no click)
``request_id`` (optional)    str        slate id; default: ``unit`` + ``timestamp``
``candidates`` (optional)    list[str]  the request's candidate item ids
``candidate_scores`` (opt.)  list[float] the logging model's scores of ``candidates``
``context`` (optional)       list[float] context features of the request
============================ ========== ==================================================

List columns are Parquet lists, JSON arrays in JSON Lines, and JSON-encoded strings
in CSV. ``candidates`` / ``candidate_scores`` are repeated on each row of a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recops.ope.feedback import LoggedFeedback

TIMESTAMP = "timestamp"
UNIT = "unit"
POSITION = "position"
ITEM_ID = "item_id"
PROPENSITY = "propensity"
REWARD = "reward"
REQUEST_ID = "request_id"
CANDIDATES = "candidates"
CANDIDATE_SCORES = "candidate_scores"
CONTEXT = "context"

REQUIRED_COLUMNS: tuple[str, ...] = (TIMESTAMP, UNIT, POSITION, ITEM_ID, PROPENSITY, REWARD)
LIST_COLUMNS: tuple[str, ...] = (CANDIDATES, CANDIDATE_SCORES, CONTEXT)


@dataclass(frozen=True)
class ExposureLog:
    """Logged feedback read from an exposure log, with the request's candidates.

    Parameters
    ----------
    feedback:
        The rows as :class:`LoggedFeedback`; ``slate_id`` is the request index and
        ``action_ids`` the item ids of the action indices.
    candidates:
        Per request (in ``slate_id`` order), the candidates' action indices, or None
        when the log has no ``candidates`` column.
    candidate_scores:
        Per request, the logging model's scores of ``candidates``, or None.
    """

    feedback: LoggedFeedback
    candidates: list[np.ndarray] | None = None
    candidate_scores: list[np.ndarray] | None = None


def _location(path: Path, row: int, column: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return f"{path.name}, line {row + 2}, field '{column}'"  # +1 header, +1 1-based
    if suffix in (".jsonl", ".ndjson"):
        return f"{path.name}, line {row + 1}, field '{column}'"
    return f"{path.name}, row {row}, field '{column}'"


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path, dtype={UNIT: str, ITEM_ID: str, REQUEST_ID: str})
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True, dtype={UNIT: str, ITEM_ID: str, REQUEST_ID: str})
    raise ValueError(
        f"{path}: exposure logs must be .parquet, .csv or .jsonl (got '{path.suffix}')"
    )


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        got = frame[column].iloc[bad[0]]
        raise ValueError(f"{_location(path, int(bad[0]), column)}: expected a number, got {got!r}")
    return values


def _list_cell(value: object, path: Path, row: int, column: str) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{_location(path, row, column)}: expected a JSON list ({exc.msg})"
            ) from exc
    if not isinstance(value, list | tuple | np.ndarray):
        raise ValueError(f"{_location(path, row, column)}: expected a list, got {value!r}")
    return list(value)


def read_exposures(path: str | Path, action_ids: np.ndarray | None = None) -> ExposureLog:
    """Read an exposure log (see the module docstring for the schema).

    Parameters
    ----------
    path:
        A ``.parquet``, ``.csv`` or ``.jsonl`` file.
    action_ids:
        Item ids defining the action indices (e.g. the catalog); default: the sorted
        distinct ids of shown items and candidates.

    Returns
    -------
    ExposureLog
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"exposure log not found: {src}")
    frame = _read_table(src)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{src.name}: missing column(s) {', '.join(missing)}; an exposure log needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    if frame.empty:
        raise ValueError(f"{src.name}: the exposure log has no rows")
    numbers = {c: _numeric(frame, c, src) for c in (TIMESTAMP, POSITION, PROPENSITY, REWARD)}
    position = numbers[POSITION]
    bad = np.flatnonzero((position < 0) | (position != np.round(position)))
    if bad.size:
        raise ValueError(
            f"{_location(src, int(bad[0]), POSITION)}: expected an int >= 0, "
            f"got {frame[POSITION].iloc[bad[0]]!r}"
        )
    pscore = numbers[PROPENSITY]
    bad = np.flatnonzero((pscore <= 0) | (pscore > 1))
    if bad.size:
        raise ValueError(
            f"{_location(src, int(bad[0]), PROPENSITY)}: expected a probability in (0, 1], "
            f"got {float(pscore[bad[0]])!r}"
        )
    items = frame[ITEM_ID].astype(str).to_numpy(dtype=object)
    lists = {
        c: [_list_cell(v, src, i, c) for i, v in enumerate(frame[c])]
        for c in LIST_COLUMNS
        if c in frame.columns
    }
    if REQUEST_ID in frame.columns:
        request = frame[REQUEST_ID].astype(str).to_numpy(dtype=object)
    else:
        request = (
            frame[UNIT].astype(str) + "@" + frame[TIMESTAMP].astype(np.int64).astype(str)
        ).to_numpy(dtype=object)
    _, first_row, slate_id = np.unique(request, return_index=True, return_inverse=True)

    candidate_ids = (
        [np.asarray(lists[CANDIDATES][r], dtype=str) for r in first_row]
        if (CANDIDATES in lists)
        else None
    )
    if action_ids is None:
        pool = [items.astype(str)] + (candidate_ids or [])
        action_ids = np.unique(np.concatenate(pool))
    ids = np.asarray(action_ids).astype(str)
    index = {item: a for a, item in enumerate(ids)}
    unknown = [i for i, item in enumerate(items) if item not in index]
    if unknown:
        raise ValueError(
            f"{_location(src, unknown[0], ITEM_ID)}: item {items[unknown[0]]!r} "
            "is not in `action_ids`"
        )
    context = None
    if CONTEXT in lists:
        context = np.asarray(lists[CONTEXT], dtype=np.float64)
    feedback = LoggedFeedback(
        action=np.array([index[item] for item in items], dtype=np.int64),
        reward=numbers[REWARD],
        pscore=pscore,
        n_actions=len(ids),
        position=position.astype(np.int64),
        context=context,
        slate_id=slate_id,
        action_ids=ids,
    )
    candidates = scores = None
    if candidate_ids is not None:
        candidates = []
        for s, cands in enumerate(candidate_ids):
            outside = [c for c in cands if c not in index]
            if outside:
                raise ValueError(
                    f"{_location(src, int(first_row[s]), CANDIDATES)}: item {outside[0]!r} "
                    "is not in `action_ids`"
                )
            candidates.append(np.array([index[c] for c in cands], dtype=np.int64))
    if CANDIDATE_SCORES in lists:
        scores = [np.asarray(lists[CANDIDATE_SCORES][r], dtype=np.float64) for r in first_row]
        if candidates is not None:
            for s, (cands, sc) in enumerate(zip(candidates, scores, strict=True)):
                if cands.shape != sc.shape:
                    raise ValueError(
                        f"{_location(src, int(first_row[s]), CANDIDATE_SCORES)}: expected "
                        f"{cands.shape[0]} scores like `candidates`, got {sc.shape[0]}"
                    )
    return ExposureLog(feedback=feedback, candidates=candidates, candidate_scores=scores)


def write_exposures(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write an exposure table in the schema above (format from the file suffix).

    List columns are JSON-encoded in CSV; Parquet and JSON Lines keep them as lists.
    """
    out = Path(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"exposure table is missing column(s) {', '.join(missing)}")
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif suffix == ".csv":
        encoded = frame.copy()
        for c in LIST_COLUMNS:
            if c in encoded.columns:
                encoded[c] = [json.dumps(list(map(_plain, v))) for v in encoded[c]]
        encoded.to_csv(out, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(out, orient="records", lines=True)
    else:
        raise ValueError(f"{out}: exposure logs must be .parquet, .csv or .jsonl")
    return out


def _plain(value: object) -> object:
    # numpy scalars are not JSON serialisable; lists of them come from pandas cells.
    return value.item() if isinstance(value, np.generic) else value


def exposures_from_interactions(
    interactions: pd.DataFrame, reward_event: str = "click"
) -> pd.DataFrame:
    """Turn events in the interaction schema (e.g. the serving event log) into exposures.

    Each ``impression`` event that carries ``position``, ``propensity`` and
    ``request_id`` context becomes one exposure; its reward is 1.0 when a
    ``reward_event`` of the same ``request_id`` and ``item_id`` was logged, else 0.0.

    Parameters
    ----------
    interactions:
        Columns ``user_id, item_id, event, timestamp`` plus ``position``,
        ``propensity`` and ``request_id``.
    reward_event:
        The event type that counts as a reward.

    Returns
    -------
    pandas.DataFrame
        An exposure table in this module's schema.
    """
    needed = ("user_id", "item_id", "event", "timestamp", POSITION, PROPENSITY, REQUEST_ID)
    missing = [c for c in needed if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"interactions are missing column(s) {', '.join(missing)}: impressions must be "
            "logged with position, propensity and request_id to be evaluated off-policy"
        )
    impressions = interactions[interactions["event"] == "impression"]
    if impressions.empty:
        raise ValueError("interactions hold no `impression` events: nothing was exposed")
    incomplete = impressions[[POSITION, PROPENSITY, REQUEST_ID]].isna().any(axis=1)
    if incomplete.any():
        row = int(np.flatnonzero(incomplete.to_numpy())[0])
        raise ValueError(
            f"impression at row {impressions.index[row]} lacks position, propensity or "
            "request_id: without them its exposure cannot be re-weighted"
        )
    rewards = interactions[interactions["event"] == reward_event]
    rewarded = set(
        zip(rewards[REQUEST_ID].astype(str), rewards["item_id"].astype(str), strict=True)
    )
    keys = zip(impressions[REQUEST_ID].astype(str), impressions["item_id"].astype(str), strict=True)
    return pd.DataFrame(
        {
            TIMESTAMP: impressions["timestamp"].to_numpy(dtype=np.int64),
            UNIT: impressions["user_id"].astype(str).to_numpy(dtype=object),
            POSITION: impressions[POSITION].to_numpy(dtype=np.int64),
            ITEM_ID: impressions["item_id"].astype(str).to_numpy(dtype=object),
            PROPENSITY: impressions[PROPENSITY].to_numpy(dtype=np.float64),
            REWARD: np.array([float(k in rewarded) for k in keys]),
            REQUEST_ID: impressions[REQUEST_ID].astype(str).to_numpy(dtype=object),
        }
    )
