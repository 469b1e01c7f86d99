"""Logged bandit feedback: what the current (logging) policy showed, and what happened.

One row is one shown item at one position. ``action`` indexes the action space
``0..n_actions-1`` (``action_ids`` maps an index back to the item id), ``position`` is
0-based, and ``pscore`` is the probability the logging policy had of showing that item
at that position. Rows of the same slate share a ``slate_id``.

This follows the Open Bandit Pipeline's conventions (Saito et al., 2021), so a target
policy's action distribution has shape ``(n_rows, n_actions, len_list)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from recops.ope._validation import as_1d_float, as_1d_int, check_positive_int, check_propensity


@dataclass(frozen=True)
class LoggedFeedback:
    """Logged bandit feedback, one row per shown (item, position).

    Parameters
    ----------
    action:
        Item index of each row, in ``0..n_actions-1``.
    reward:
        Observed reward (e.g. click 0/1) of each row.
    pscore:
        Logging policy's probability of showing ``action`` at ``position``, in (0, 1].
    n_actions:
        Size of the action space.
    position:
        0-based position of each row; all zeros when omitted.
    len_list:
        Number of positions; defaults to ``max(position) + 1``.
    context:
        Optional context features, shape ``(n_rows, n_features)``.
    slate_id:
        Optional slate (request) id of each row; each row is its own slate when omitted.
    action_ids:
        Optional item id of each action index, shape ``(n_actions,)``.
    """

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    position: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    len_list: int = 0
    context: np.ndarray | None = None
    slate_id: np.ndarray | None = None
    action_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward = as_1d_float("reward", self.reward)
        n = reward.shape[0]
        if n == 0:
            raise ValueError("`reward` must not be empty: there is nothing to evaluate")
        n_actions = check_positive_int("n_actions", self.n_actions)
        position = np.asarray(self.position)
        if position.size == 0:
            position = np.zeros(n, dtype=np.int64)
        len_list = self.len_list or int(np.max(position)) + 1
        len_list = check_positive_int("len_list", len_list)
        pscore = as_1d_float("pscore", self.pscore, n)
        check_propensity("pscore", pscore, allow_zero=False)
        values: dict[str, Any] = {
            "reward": reward,
            "n_actions": n_actions,
            "len_list": len_list,
            "pscore": pscore,
            "action": as_1d_int("action", self.action, n, n_actions),
            "position": as_1d_int("position", position, n, len_list),
        }
        if self.context is not None:
            context = np.asarray(self.context, dtype=np.float64)
            if context.ndim == 1:
                context = context[:, None]
            if context.ndim != 2 or context.shape[0] != n:
                raise ValueError(
                    f"`context` must have shape ({n}, n_features) (got {context.shape})"
                )
            values["context"] = context
        if self.slate_id is not None:
            slate_id = np.asarray(self.slate_id)
            if slate_id.shape != (n,):
                raise ValueError(f"`slate_id` must have shape ({n},) (got {slate_id.shape})")
            values["slate_id"] = slate_id
        if self.action_ids is not None:
            ids = np.asarray(self.action_ids)
            if ids.shape != (n_actions,):
                raise ValueError(f"`action_ids` must have shape ({n_actions},) (got {ids.shape})")
            values["action_ids"] = ids
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def n_rows(self) -> int:
        """Number of logged rows."""
        return int(self.reward.shape[0])

    @classmethod
    def from_bandit_feedback(cls, feedback: Any) -> LoggedFeedback:
        """Convert any object with the Open Bandit Dataset's fields.

        ``feedback`` needs ``action``, ``reward``, ``pscore``, ``n_actions`` and
        optionally ``position``, ``len_list`` and ``context`` attributes (or keys), as in
        :func:`recops.data.loaders.obd.load_obd_bandit_feedback` or obp's dict.
        """

        def get(name: str, default: Any = None) -> Any:
            if isinstance(feedback, dict):
                return feedback.get(name, default)
            return getattr(feedback, name, default)

        position = get("position")
        context = get("context")
        return cls(
            action=get("action"),
            reward=get("reward"),
            pscore=get("pscore"),
            n_actions=int(get("n_actions")),
            position=np.zeros(0, dtype=np.int64) if position is None else position,
            len_list=int(get("len_list") or 0),
            context=None if context is None else np.asarray(context, dtype=np.float64),
        )

    def take(self, rows: np.ndarray) -> LoggedFeedback:
        """A new feedback with only ``rows`` (an index or boolean mask)."""
        return LoggedFeedback(
            action=self.action[rows],
            reward=self.reward[rows],
            pscore=self.pscore[rows],
            n_actions=self.n_actions,
            position=self.position[rows],
            len_list=self.len_list,
            context=None if self.context is None else self.context[rows],
            slate_id=None if self.slate_id is None else self.slate_id[rows],
            action_ids=self.action_ids,
        )


def read_obd(
    path_or_data_dir: str | Path, behavior_policy: str = "random", campaign: str = "all"
) -> LoggedFeedback:
    """Read an Open Bandit Dataset log with obp's conventions.

    ``action`` is the raw ``item_id``, ``position`` the CSV's ``position`` minus one and
    ``pscore`` the logged ``propensity_score``; rows are in time order.

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
    LoggedFeedback
    """
    from recops.data.loaders.obd import load_obd_bandit_feedback

    raw = load_obd_bandit_feedback(path_or_data_dir, behavior_policy, campaign)
    feedback = LoggedFeedback.from_bandit_feedback(raw)
    # OBD's actions are the raw item ids 0..n_actions-1.
    return replace(feedback, action_ids=np.arange(feedback.n_actions))
