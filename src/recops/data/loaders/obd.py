"""The Open Bandit Dataset (ZOZOTOWN), as events and as logged bandit feedback.

Layout: ``obd/{random,bts}/{all,men,women}/{campaign}.csv`` plus
``item_context.csv`` beside each; ``random`` is the uniform-random logging policy,
``bts`` Bernoulli Thompson sampling. Each row is one recommendation shown in one of
three slots, with the click and the logging policy's propensity.

Two views:

* :func:`load_obd` gives a :class:`~recops.data.schema.Dataset`: each row is an
  ``"impression"`` event with ``value`` = click (0.0/1.0), and context columns
  ``position`` (0-based: the file's 1..3 minus one), ``propensity``, the four
  ``user_feature_*`` and the ``user-item_affinity_*`` columns. OBD has no user ids;
  ``user_id`` is a short hash of the four user features (users with equal features
  are one pseudo-user).
* :func:`load_obd_bandit_feedback` gives the arrays off-policy estimators need, with
  the conventions of Open Bandit Pipeline (obp) so that estimates can be compared
  with it: rows ordered by time, actions are the raw ``item_id`` ints, ``context``
  is the one-hot user features (first level dropped), ``action_context`` the
  label-encoded item features followed by ``item_feature_0``.

Reference: Y. Saito, S. Aihara, M. Matsutani, Y. Narita. Open Bandit Dataset and
Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation. NeurIPS 2021
Datasets and Benchmarks. Data under CC BY 4.0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recops.data.errors import DataValidationError, Problem
from recops.data.loaders.delimited import RawTable, read_delimited, require_columns
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
from recops.data.validation import validate_interactions, validate_items, validate_users

BEHAVIOR_POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
USER_FEATURES = tuple(f"user_feature_{i}" for i in range(4))
_LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")


@dataclass(frozen=True, eq=False)
class BanditFeedback:
    """Logged bandit feedback of one OBD log, ordered by time (obp's conventions).

    Parameters
    ----------
    n_rounds:
        Number of logged rounds (rows).
    n_actions:
        Number of actions: ``max(action) + 1``, as obp counts them.
    len_list:
        Number of slots in a recommendation list: ``max(position) + 1``.
    action:
        (n_rounds,) int64, the item shown (the raw ``item_id``).
    position:
        (n_rounds,) int64, 0-based slot.
    reward:
        (n_rounds,) int64, 1 for a click.
    pscore:
        (n_rounds,) float64, the logging policy's probability of the action in
        that slot.
    context:
        (n_rounds, dim_context) float64, one-hot user features.
    action_context:
        (n_actions, 4) float64, per item: label codes of ``item_id``,
        ``item_feature_1..3``, then ``item_feature_0``.
    """

    n_rounds: int
    n_actions: int
    len_list: int
    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    context: np.ndarray
    action_context: np.ndarray

    def __post_init__(self) -> None:
        for name in ("action", "position", "reward", "pscore", "context"):
            got = len(getattr(self, name))
            if got != self.n_rounds:
                raise ValueError(f"BanditFeedback.{name} must have {self.n_rounds} rows, got {got}")

    def to_dict(self) -> dict[str, object]:
        """The feedback as the dict obp's estimators take (``n_rounds``, ``action``...)."""
        return {
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "action": self.action,
            "position": self.position,
            "reward": self.reward,
            "pscore": self.pscore,
            "context": self.context,
            "action_context": self.action_context,
        }


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def obd_log_path(path: str | Path, behavior_policy: str = "random", campaign: str = "all") -> Path:
    """Find a campaign log from a data folder, the ``obd`` folder or the file itself.

    Parameters
    ----------
    path:
        A folder holding ``obd/``, the ``obd`` folder, or a campaign CSV file.
    behavior_policy:
        ``"random"`` or ``"bts"``.
    campaign:
        ``"all"``, ``"men"`` or ``"women"``.

    Returns
    -------
    pathlib.Path
        The campaign CSV; its ``item_context.csv`` is in the same folder.
    """
    behavior_policy = _check_choice("behavior_policy", behavior_policy, BEHAVIOR_POLICIES)
    campaign = _check_choice("campaign", campaign, CAMPAIGNS)
    path = Path(path)
    if path.is_file():
        return path
    relative = Path(behavior_policy) / campaign / f"{campaign}.csv"
    for root in (path, path / "obd"):
        if (root / relative).is_file():
            return root / relative
    raise FileNotFoundError(
        f"no Open Bandit Dataset log at {path / relative} or {path / 'obd' / relative}"
    )


def _read_log(csv_path: Path) -> RawTable:
    table = read_delimited(csv_path)
    require_columns(table, [*_LOG_COLUMNS, *USER_FEATURES])
    return table


def _positions(table: RawTable) -> np.ndarray:
    """The file's 1-based slots as 0-based ones; raises naming lines that are not."""
    raw = table.frame["position"]
    position = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(position) & (position >= 1) & (position % 1 == 0)))
    if len(bad):
        raise DataValidationError(
            [
                Problem(
                    table.source,
                    int(table.lines[i]),
                    "position",
                    "bad_position",
                    f"expected a 1-based slot (1, 2, 3...), got {raw.iloc[i]!r}",
                )
                for i in bad[:20]
            ],
            n_total=len(bad),
        )
    return position.astype(np.int64) - 1


def _pseudo_user_ids(features: pd.DataFrame) -> pd.Series:
    """A 12-hex-digit id per distinct combination of user features."""
    joined = features.iloc[:, 0].fillna("").astype(str)
    for column in features.columns[1:]:
        joined = joined + "|" + features[column].fillna("").astype(str)
    # Few distinct profiles: hash those, not every row.
    ids = {p: hashlib.sha1(p.encode()).hexdigest()[:12] for p in joined.unique()}
    return joined.map(ids)


def _floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric text columns as float64; an unreadable cell becomes NaN."""
    try:
        # One vectorised cast for the common case of a clean file.
        return frame.astype(np.float64)
    except (ValueError, TypeError):
        return frame.apply(pd.to_numeric, errors="coerce").astype(np.float64)


def load_obd(path: str | Path, behavior_policy: str = "random", campaign: str = "all") -> Dataset:
    """Load one OBD log as impression events, its items and its pseudo-users.

    Parameters
    ----------
    path:
        A folder holding ``obd/``, the ``obd`` folder, or a campaign CSV file.
    behavior_policy:
        ``"random"`` or ``"bts"``.
    campaign:
        ``"all"``, ``"men"`` or ``"women"``.

    Returns
    -------
    Dataset
        Events as described in the module notes; items with ``item_feature_0..3``
        (no title or categories in OBD); users with their four features.
    """
    log_path = obd_log_path(path, behavior_policy, campaign)
    table = _read_log(log_path)
    raw = table.frame
    items = _read_items(log_path.parent / "item_context.csv")
    affinity = [c for c in raw.columns if str(c).startswith("user-item_affinity_")]
    user_ids = _pseudo_user_ids(raw[list(USER_FEATURES)])
    events = pd.DataFrame(
        {
            USER_ID: user_ids,
            ITEM_ID: raw["item_id"],
            EVENT: "impression",
            VALUE: raw["click"],
            TIMESTAMP: raw["timestamp"],
            "position": _positions(table),
            "propensity": pd.to_numeric(raw["propensity_score"], errors="coerce"),
            **{c: raw[c] for c in USER_FEATURES},
        }
    )
    events = pd.concat([events, _floats(raw[affinity])], axis=1)
    interactions, _ = validate_interactions(
        events, source=table.source, lines=table.lines, catalog=items, duplicates=False
    )
    users, _ = validate_users(
        interactions[[USER_ID, *USER_FEATURES]].drop_duplicates(USER_ID),
        source=table.source,
    )
    name = f"obd-{behavior_policy}-{campaign}"
    return Dataset(
        interactions.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True),
        items,
        users,
        name=name,
    )


def _read_items(path: Path) -> pd.DataFrame:
    table = read_delimited(path)
    require_columns(table, ["item_id", "item_feature_0"])
    raw = table.frame
    features = [c for c in raw.columns if str(c).startswith("item_feature_")]
    items, _ = validate_items(
        pd.DataFrame(
            {
                ITEM_ID: raw["item_id"],
                TITLE: "",
                CATEGORIES: None,
                PUBLISH_TIME: pd.Series(pd.NA, index=raw.index, dtype="Int64"),
                **{c: raw[c] for c in features},
            }
        ).assign(item_feature_0=pd.to_numeric(raw["item_feature_0"])),
        source=table.source,
        lines=table.lines,
    )
    return items


def load_obd_bandit_feedback(
    path_or_data_dir: str | Path, behavior_policy: str = "random", campaign: str = "all"
) -> BanditFeedback:
    """Load one OBD log as arrays for off-policy evaluation, as obp builds them.

    Parameters
    ----------
    path_or_data_dir:
        A folder holding ``obd/``, the ``obd`` folder, or a campaign CSV file.
    behavior_policy:
        ``"random"`` or ``"bts"``.
    campaign:
        ``"all"``, ``"men"`` or ``"women"``.

    Returns
    -------
    BanditFeedback
        Rows ordered by time (stable for equal times).
    """
    log_path = obd_log_path(path_or_data_dir, behavior_policy, campaign)
    table = _read_log(log_path)
    order = np.argsort(table.frame["timestamp"].to_numpy(dtype=str), kind="stable")
    raw = table.frame.iloc[order].reset_index(drop=True)
    position = _positions(table)[order]
    events, _ = validate_interactions(
        pd.DataFrame(
            {
                USER_ID: "-",
                ITEM_ID: raw["item_id"],
                EVENT: "impression",
                VALUE: raw["click"],
                TIMESTAMP: raw["timestamp"],
                "position": position,
                "pscore": pd.to_numeric(raw["propensity_score"], errors="coerce"),
            }
        ),
        source=table.source,
        lines=table.lines[order],
        duplicates=False,
    )
    action = events[ITEM_ID].astype(np.int64).to_numpy()
    context = pd.get_dummies(raw[list(USER_FEATURES)], drop_first=True)
    items = read_delimited(log_path.parent / "item_context.csv").frame
    return BanditFeedback(
        n_rounds=len(events),
        n_actions=int(action.max()) + 1,
        len_list=int(position.max()) + 1,
        action=action,
        position=position,
        reward=events[VALUE].to_numpy().astype(np.int64),
        pscore=events["pscore"].to_numpy(dtype=np.float64),
        context=context.to_numpy(dtype=np.float64),
        action_context=_action_context(items),
    )


def _action_context(items: pd.DataFrame) -> np.ndarray:
    """obp's item features: label codes of every column but ``item_feature_0``, then it."""
    coded = [
        pd.factorize(pd.to_numeric(items[c]) if c == "item_id" else items[c], sort=True)[0]
        for c in items.columns
        if c not in ("item_feature_0", "Unnamed: 0", "")
    ]
    return np.column_stack([*coded, pd.to_numeric(items["item_feature_0"]).to_numpy()]).astype(
        np.float64
    )
