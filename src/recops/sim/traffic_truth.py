"""What a simulated run served and what the world says about it: slates, arms, per-unit truth.

:mod:`recops.sim.traffic` plays the world's users against a server; this module holds
its result. :class:`ServedSlates` is every reply with the world's click probability of
each shown slot; :class:`ArmTruth` the true and observed CTR of one (experiment,
variant); :func:`unit_truth` the per-unit truth in the layout of the server's per-unit
table, for checking an A/B analysis against the world.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table

from recops.experiments.config import HOLDOUT

if TYPE_CHECKING:  # the run's configuration, in the module that runs it
    from recops.sim.traffic import TrafficConfig


@dataclass(frozen=True)
class ServedSlates:
    """What the server served, per request (``R`` served requests, ``k`` slots).

    Parameters
    ----------
    index:
        ``(R,)`` the request's row in the :class:`TrafficPlan`.
    time, user, user_id:
        ``(R,)`` world time, user index and user id of the request.
    request_id, experiment, variant, model, version:
        ``(R,)`` object arrays from the reply (None where the reply had none).
    items, item_id:
        ``(R, k)`` item indices and ids shown, in position order; ``-1`` and None in
        empty slots (the server returned fewer than ``k``).
    click_probability:
        ``(R, k)`` the world's ``p_rj`` (0 in empty slots).
    clicks:
        ``(R, k)`` bool, the drawn clicks (posted to the server).
    """

    index: np.ndarray
    time: np.ndarray
    user: np.ndarray
    user_id: np.ndarray
    request_id: np.ndarray
    experiment: np.ndarray
    variant: np.ndarray
    model: np.ndarray
    version: np.ndarray
    items: np.ndarray
    item_id: np.ndarray
    click_probability: np.ndarray
    clicks: np.ndarray

    @property
    def n_requests(self) -> int:
        """Number of served requests."""
        return len(self.index)

    @property
    def impressions(self) -> np.ndarray:
        """``(R,)`` items shown per request."""
        return np.asarray((self.items >= 0).sum(axis=1), dtype=np.int64)

    @property
    def expected_clicks(self) -> np.ndarray:
        """``(R,)`` the true expected clicks of each served slate, ``Σ_j p_rj``."""
        return np.asarray(self.click_probability.sum(axis=1), dtype=np.float64)

    def to_frame(self) -> pd.DataFrame:
        """One row per served request, in arrival order.

        Columns ``request_id, timestamp, user_id, experiment, variant, model, version,
        items`` (a list of item ids), ``impressions, expected_clicks, clicks``.
        """
        return pd.DataFrame(
            {
                "request_id": self.request_id,
                "timestamp": self.time.astype(np.int64),
                "user_id": self.user_id,
                "experiment": self.experiment,
                "variant": self.variant,
                "model": self.model,
                "version": self.version,
                "items": [[i for i in row if i is not None] for row in self.item_id],
                "impressions": self.impressions,
                "expected_clicks": self.expected_clicks,
                "clicks": self.clicks.sum(axis=1).astype(np.int64),
            }
        )


@dataclass(frozen=True)
class ArmTruth:
    """The truth and the observation for one (experiment, variant) of a run.

    ``experiment`` and ``variant`` are None for requests served outside any
    experiment. ``expected_clicks`` is ``Σ_r Σ_j p_rj`` over the arm's served slates;
    ``clicks`` the clicks drawn from it.
    """

    experiment: str | None
    variant: str | None
    units: int
    requests: int
    impressions: int
    expected_clicks: float
    clicks: int
    versions: tuple[str, ...]

    @property
    def true_ctr(self) -> float:
        """Expected clicks per impression: the arm's true click-through rate."""
        return _ratio(self.expected_clicks, self.impressions)

    @property
    def observed_ctr(self) -> float:
        """Clicks per impression, as the server's log sees it."""
        return _ratio(self.clicks, self.impressions)

    @property
    def true_clicks_per_request(self) -> float:
        """Expected clicks per served slate."""
        return _ratio(self.expected_clicks, self.requests)

    @property
    def observed_clicks_per_request(self) -> float:
        """Clicks per served slate."""
        return _ratio(self.clicks, self.requests)

    def to_dict(self) -> dict[str, Any]:
        """The counts and the four rates, as plain JSON values."""
        return {
            "experiment": self.experiment,
            "variant": self.variant,
            "units": self.units,
            "requests": self.requests,
            "impressions": self.impressions,
            "expected_clicks": self.expected_clicks,
            "clicks": self.clicks,
            "versions": list(self.versions),
            "true_ctr": self.true_ctr,
            "observed_ctr": self.observed_ctr,
            "true_clicks_per_request": self.true_clicks_per_request,
            "observed_clicks_per_request": self.observed_clicks_per_request,
        }


@dataclass(frozen=True)
class TrafficResult:
    """A run: what was served, the truth per arm, errors and speed.

    Parameters
    ----------
    config:
        What was run.
    planned:
        Requests in the plan.
    served:
        The requests the server answered with a slate, with their truth.
    arms:
        One :class:`ArmTruth` per (experiment, variant) met, in order of first request.
    errors:
        Failed calls by ``"<endpoint> <status or exception>"`` (a failed recommend
        sends no events; failed events leave the slate served).
    events_posted:
        Events the server acknowledged.
    wall_s:
        Seconds from the first request to the last reply.
    """

    config: TrafficConfig
    planned: int
    served: ServedSlates
    arms: tuple[ArmTruth, ...]
    errors: dict[str, int] = field(default_factory=dict)
    events_posted: int = 0
    wall_s: float = 0.0

    @property
    def requests_per_s(self) -> float:
        """Served requests per second of wall time."""
        return self.served.n_requests / self.wall_s if self.wall_s > 0 else float("nan")

    def arm(self, variant: str | None, experiment: str | None = None) -> ArmTruth:
        """The arm of ``variant`` (in ``experiment``, when several experiments ran).

        Raises
        ------
        KeyError
            When the run met no such arm; the message lists those it met.
        """
        found = [
            a
            for a in self.arms
            if a.variant == variant and (experiment is None or a.experiment == experiment)
        ]
        if len(found) != 1:
            met = [(a.experiment, a.variant) for a in self.arms]
            what = "no" if not found else "more than one"
            raise KeyError(
                f"{what} arm with variant {variant!r} (experiment {experiment!r}); "
                f"the run met (experiment, variant) {met}"
            )
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the config without its headers)."""
        return {
            "config": self.config.model_dump(),
            "planned": self.planned,
            "served": self.served.n_requests,
            "events_posted": self.events_posted,
            "errors": dict(sorted(self.errors.items())),
            "wall_s": self.wall_s,
            "requests_per_s": self.requests_per_s,
            "arms": [a.to_dict() for a in self.arms],
        }

    def table(self) -> Table:
        """A rich table: one column per arm, the world's truth beside the observation.

        Arms are columns and quantities rows, so that two or three arms fit in 80
        columns (a row per arm needed eleven columns).
        """
        experiments = {a.experiment for a in self.arms}
        title = f"simulated traffic against {self.config.url}: truth vs observed"
        if len(experiments) == 1 and None not in experiments:
            title += f" (experiment {next(iter(experiments))})"
        table = Table(title=title)
        table.add_column("")
        for a in self.arms:
            label = a.variant or "-"
            if len(experiments) > 1:
                label = f"{a.experiment or '-'} · {label}"
            versions = ", ".join(a.versions)
            table.add_column(
                f"{label}\n(version {versions})" if versions else label, justify="right"
            )
        rows: tuple[tuple[str, Callable[[ArmTruth], str]], ...] = (
            ("units", lambda a: f"{a.units:,}"),
            ("requests", lambda a: f"{a.requests:,}"),
            ("impressions", lambda a: f"{a.impressions:,}"),
            ("clicks observed", lambda a: f"{a.clicks:,}"),
            ("clicks expected (world)", lambda a: f"{a.expected_clicks:,.1f}"),
            ("CTR observed", lambda a: f"{a.observed_ctr:.4f}"),
            ("CTR true (world)", lambda a: f"{a.true_ctr:.4f}"),
            ("true clicks per request", lambda a: f"{a.true_clicks_per_request:.3f}"),
        )
        for name, cell in rows:
            table.add_row(name, *(cell(a) for a in self.arms))
        errors = sum(self.errors.values())
        table.caption = (
            f"{self.served.n_requests:,} of {self.planned:,} requests served in "
            f"{self.wall_s:.1f} s ({self.requests_per_s:,.0f}/s), "
            f"{self.events_posted:,} events posted, {errors:,} errors"
        )
        return table


def unit_truth(
    result: TrafficResult,
    experiment: str,
    align_to: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The per-unit truth of ``experiment``, in the layout of the server's per-unit table.

    One row per unit served by the experiment (held-out units left out, as
    :func:`recops.experiments.logs.unit_table` does): ``unit_id, variant, timestamp``
    (first exposure), ``requests, impressions, clicks`` (what the server's table
    counts) and ``expected_clicks`` (their truth). Rows in first-exposure order.

    Parameters
    ----------
    result:
        A run.
    experiment:
        The experiment's name.
    align_to:
        A per-unit table with ``unit_id`` and ``variant`` (e.g. the server's): the
        rows are returned in its order.

    Raises
    ------
    ValueError
        When ``align_to`` has other units than the run, or puts a unit in another
        variant than the server's replies did.
    """
    frame = result.served.to_frame()
    frame = frame[(frame["experiment"] == experiment) & (frame["variant"] != HOLDOUT)]
    grouped = frame.groupby("user_id", sort=False)
    truth = pd.DataFrame(
        {
            "unit_id": list(grouped.groups),
            "variant": grouped["variant"].first().to_numpy(dtype=object),
            "timestamp": grouped["timestamp"].min().to_numpy(dtype=np.int64),
            "requests": grouped.size().to_numpy(dtype=np.float64),
            "impressions": grouped["impressions"].sum().to_numpy(dtype=np.float64),
            "clicks": grouped["clicks"].sum().to_numpy(dtype=np.float64),
            "expected_clicks": grouped["expected_clicks"].sum().to_numpy(dtype=np.float64),
        }
    )
    changed = grouped["variant"].nunique()
    if (changed > 1).any():
        raise ValueError(
            f"unit {changed[changed > 1].index[0]!r} got more than one variant of "
            f"{experiment!r} from the server: its assignment is not sticky"
        )
    if align_to is None:
        return truth.reset_index(drop=True)
    theirs = align_to["unit_id"].astype(str)
    if set(theirs) != set(truth["unit_id"]) or len(theirs) != len(truth):
        only_theirs = sorted(set(theirs) - set(truth["unit_id"]))[:5]
        only_ours = sorted(set(truth["unit_id"]) - set(theirs))[:5]
        raise ValueError(
            f"`align_to` has {len(theirs)} units and the run served {len(truth)} in "
            f"{experiment!r}: only in `align_to` {only_theirs}, only in the run {only_ours}"
        )
    aligned = truth.set_index("unit_id").loc[list(theirs)].reset_index()
    mismatch = aligned["variant"].to_numpy() != align_to["variant"].astype(str).to_numpy()
    if mismatch.any():
        row = int(np.flatnonzero(mismatch)[0])
        raise ValueError(
            f"unit {aligned['unit_id'].iloc[row]!r} is in variant "
            f"{align_to['variant'].iloc[row]!r} in `align_to` but was served as "
            f"{aligned['variant'].iloc[row]!r}"
        )
    return aligned


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def arms_of(served: ServedSlates) -> tuple[ArmTruth, ...]:
    """One :class:`ArmTruth` per (experiment, variant) served, in order of first request."""
    keys = list(zip(served.experiment.tolist(), served.variant.tolist(), strict=True))
    impressions, expected = served.impressions, served.expected_clicks
    clicks = served.clicks.sum(axis=1)
    groups: dict[tuple[str | None, str | None], list[int]] = {}
    for r, key in enumerate(keys):
        groups.setdefault(key, []).append(r)
    arms = []
    for (experiment, variant), rows in groups.items():
        idx = np.asarray(rows, dtype=np.int64)
        versions = sorted({str(v) for v in served.version[idx] if v is not None})
        arms.append(
            ArmTruth(
                experiment=experiment,
                variant=variant,
                units=len(np.unique(served.user[idx])),
                requests=len(idx),
                impressions=int(impressions[idx].sum()),
                expected_clicks=float(expected[idx].sum()),
                clicks=int(clicks[idx].sum()),
                versions=tuple(versions),
            )
        )
    return tuple(arms)
