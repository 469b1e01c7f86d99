"""The :class:`World`: the generated catalog and users plus the ground-truth click model.

Every method that takes users, items, positions and times broadcasts them together
like numpy ufuncs, so a whole batch of slates is scored in one call. Indices are
the integer positions behind the ids (``"u17"`` is user index 17, ``"i5"`` item 5);
an item index of ``-1`` stands for an empty slot and has click probability 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recops.data.schema import Dataset
from recops.data.world.catalog import SECONDARY_WEIGHT, ItemTable, generate_items, item_id_array
from recops.data.world.click_model import examination, freshness_logit, sigmoid
from recops.data.world.config import SECONDS_PER_DAY, SECONDS_PER_HOUR, WorldConfig
from recops.data.world.logging_policy import SlatePolicy
from recops.data.world.simulate import SimulationLog, simulate_log
from recops.data.world.users import UserTable, generate_users, user_id_array

IntArray = np.ndarray | int | Sequence[int]

# Independent random streams per component, so that e.g. the catalog of a seed does
# not change when only the number of users does.
_STREAM_CATALOG, _STREAM_USERS, _STREAM_LOG, _N_STREAMS = 0, 1, 2, 3


def catalog_rng(seed: int) -> np.random.Generator:
    """The random stream the catalog of ``seed`` is drawn from."""
    return component_rngs(seed)[_STREAM_CATALOG]


def component_rngs(seed: int) -> list[np.random.Generator]:
    """One generator per world component, derived from ``seed``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(_N_STREAMS)]


class World:
    """A simulated news site whose click behaviour is known exactly.

    Parameters
    ----------
    config:
        The configuration the world was drawn from.
    items:
        The catalog truth (see :func:`~recops.data.world.catalog.generate_items`).
    users:
        The user truth (see :func:`~recops.data.world.users.generate_users`).

    Examples
    --------
    >>> world = World.from_config(WorldConfig(n_users=50, n_items=200, days=2))
    >>> world.click_probability([0, 1], [[3], [4]], 0, world.config.start_time).shape
    (2, 2)
    """

    def __init__(self, config: WorldConfig, items: ItemTable, users: UserTable) -> None:
        self.config = config
        self.items = items
        self.users = users
        self._activity_cumsum = np.cumsum(users.activity)
        self._user_ids: np.ndarray | None = None
        self._item_ids: np.ndarray | None = None

    @classmethod
    def from_config(cls, config: WorldConfig) -> World:
        """Draw the catalog and the users of ``config`` (no events yet)."""
        rngs = component_rngs(config.seed)
        rng_items, rng_users = rngs[_STREAM_CATALOG], rngs[_STREAM_USERS]
        return cls(config, generate_items(config, rng_items), generate_users(config, rng_users))

    # ------------------------------------------------------------------ tables and ids
    @property
    def n_users(self) -> int:
        """Number of users over the whole period."""
        return self.users.n_users

    @property
    def n_items(self) -> int:
        """Number of items over the whole period."""
        return self.items.n_items

    def catalog(self) -> pd.DataFrame:
        """The item table in the recops schema (no latent truth)."""
        return self.items.to_frame()

    def users_frame(self) -> pd.DataFrame:
        """The users table: ``user_id``, ``signup_time``, ``region``."""
        return self.users.to_frame()

    def user_ids(self, user_idx: IntArray | None = None) -> np.ndarray:
        """Ids of user indices (all users when ``user_idx`` is None)."""
        if self._user_ids is None:
            self._user_ids = user_id_array(self.n_users)
        return self._user_ids if user_idx is None else self._user_ids[self._users(user_idx)]

    def item_ids(self, item_idx: IntArray | None = None) -> np.ndarray:
        """Ids of item indices (all items when ``item_idx`` is None)."""
        if self._item_ids is None:
            self._item_ids = item_id_array(self.n_items)
        if item_idx is None:
            return self._item_ids
        idx = self._items(item_idx)
        if idx.size and idx.min() < 0:
            raise ValueError("item index -1 (an empty slot) has no id")
        return self._item_ids[idx]

    def user_index(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Indices of ids like ``"u17"``; raises on ids this world does not have."""
        return _parse_ids(user_ids, "u", self.n_users, "user")

    def item_index(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Indices of ids like ``"i5"``; raises on ids this world does not have."""
        return _parse_ids(item_ids, "i", self.n_items, "item")

    # ------------------------------------------------------------------ the truth
    def examination(self, position: IntArray) -> np.ndarray:
        """Probability that slot ``position`` (0 = top) is looked at: ``(1/(p+1))**eta``."""
        return examination(np.asarray(position), self.config.position_bias)

    def interests(self, user_idx: IntArray, t: IntArray) -> np.ndarray:
        """Users' interest distributions over categories at ``t``, shape ``(..., C)``."""
        return self.users.interests(self._users(user_idx), np.asarray(t))

    def attractiveness(self, user_idx: IntArray, item_idx: IntArray, t: IntArray) -> np.ndarray:
        """Probability that a user clicks an item once they have examined it.

        ``sigmoid(base + w_int * interest + w_lat * <z_u, z_i> / sqrt(d) + quality
        + freshness)``; 0 for items not yet published at ``t`` and for index ``-1``.
        Ages beyond ``max_item_age_hours`` are not masked (the item is merely stale).
        """
        cfg = self.config
        u, i, tt = np.broadcast_arrays(self._users(user_idx), self._items(item_idx), np.asarray(t))
        valid = i >= 0
        ii = np.where(valid, i, 0)
        interests = self.users.interests(u, tt)
        primary = np.take_along_axis(interests, self.items.primary[ii][..., None], axis=-1)[..., 0]
        second = self.items.secondary[ii]
        has_second = second >= 0
        secondary = np.take_along_axis(interests, np.maximum(second, 0)[..., None], axis=-1)
        share = np.where(has_second, SECONDARY_WEIGHT, 0.0)
        interest = (1.0 - share) * primary + share * secondary[..., 0]

        dim = self.items.latent.shape[1]
        latent = np.einsum(
            "...d,...d->...", self.users.latent[u], self.items.latent[ii], dtype=np.float64
        ) / np.sqrt(dim)
        age = tt - self.items.publish_time[ii]
        logit = (
            cfg.base_logit
            + cfg.interest_weight * interest
            + cfg.latent_weight * latent
            + self.items.quality[ii]
            + freshness_logit(age, cfg.freshness_half_life_hours)
        )
        return np.where(valid & (age >= 0), sigmoid(logit), 0.0)

    def click_probability(
        self, user_idx: IntArray, item_idx: IntArray, position: IntArray, t: IntArray
    ) -> np.ndarray:
        """``examination(position) * attractiveness(user, item, t)``, broadcast together."""
        return self.examination(position) * self.attractiveness(user_idx, item_idx, t)

    def expected_clicks(
        self, user_idx: IntArray, slate_item_idx: IntArray, t: IntArray
    ) -> np.ndarray:
        """Exact expected number of clicks on slates (item ``k`` shown in slot ``k``).

        Parameters
        ----------
        user_idx, t:
            Shape ``S`` (or broadcastable to it): one user and time per slate.
        slate_item_idx:
            Shape ``S + (K,)``; ``-1`` marks an empty slot.

        Returns
        -------
        numpy.ndarray
            Shape ``S``: the sum over slots of the click probabilities, i.e. the true
            value of showing these slates under the click-count reward.
        """
        return self.slate_click_probability(user_idx, slate_item_idx, t).sum(axis=-1)

    def slate_click_probability(
        self, user_idx: IntArray, slate_item_idx: IntArray, t: IntArray
    ) -> np.ndarray:
        """Click probability of every slot of slates (item ``k`` in slot ``k``).

        Shapes as in :meth:`expected_clicks`; returns an array shaped like
        ``slate_item_idx`` (0 in empty slots).
        """
        slates = self._items(slate_item_idx)
        if slates.ndim == 0:
            raise ValueError("`slate_item_idx` must have a last axis of slots (got a scalar)")
        positions = np.arange(slates.shape[-1])
        return self.click_probability(
            np.asarray(user_idx)[..., None], slates, positions, np.asarray(t)[..., None]
        )

    def simulate_clicks(
        self, rng: np.random.Generator, user_idx: IntArray, slate_item_idx: IntArray, t: IntArray
    ) -> np.ndarray:
        """Clicks drawn from the truth on shown slates (shapes as in :meth:`expected_clicks`).

        Returns
        -------
        numpy.ndarray
            Boolean array shaped like ``slate_item_idx``.
        """
        probs = self.slate_click_probability(user_idx, slate_item_idx, t)
        return rng.random(probs.shape) < probs

    # ------------------------------------------------------------------ availability and traffic
    def available_range(self, t: IntArray) -> tuple[np.ndarray, np.ndarray]:
        """Index ranges ``[lo, hi)`` of the items on the site at ``t`` (as ``available_items``)."""
        return self.items.available_range(
            np.asarray(t), self.config.max_item_age_hours * SECONDS_PER_HOUR
        )

    def available_items(self, t: int) -> np.ndarray:
        """Indices of the items published at or before ``t`` and at most ``max_item_age_hours`` old.

        Items are indexed in publish order, so the result is a contiguous range.
        """
        lo, hi = self.available_range(int(t))
        return np.arange(int(lo), int(hi))

    def sample_request(
        self, rng: np.random.Generator, t: int, size: int | None = None
    ) -> np.ndarray | int:
        """Which user arrives at ``t``: signed-up users, in proportion to their activity.

        Returns
        -------
        int or numpy.ndarray
            One user index, or ``size`` of them drawn independently.
        """
        n_present = int(self.users.n_signed_up(int(t)))
        if n_present == 0:
            raise ValueError(
                f"no user has signed up by t={int(t)}; the first signup is at "
                f"{int(self.users.signup_time[0])}"
            )
        users = self._draw_users(rng, np.full(1 if size is None else size, n_present))
        return int(users[0]) if size is None else users

    def sample_arrivals(
        self, rng: np.random.Generator, start: int | None = None, end: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Request times and users of the site's traffic over ``[start, end)``.

        Requests form a non-homogeneous Poisson process with rate
        ``requests_per_user_per_day / 86400 * tod(t) * sum of activity of signed-up
        users``, where ``tod(t) = 1 + A cos(2π (hour(t) - peak_hour) / 24)``; it is
        drawn exactly by thinning, one day at a time. Each request's user is drawn
        like :meth:`sample_request`.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Sorted int64 unix-second times and the int64 user index of each request.
        """
        cfg = self.config
        start = cfg.start_time if start is None else int(start)
        end = cfg.end_time if end is None else int(end)
        if end < start:
            raise ValueError(f"`end` must not precede `start` (got start={start}, end={end})")
        bounds = np.append(np.arange(start, end, SECONDS_PER_DAY), end)
        times, users = [], []
        for a, b in itertools.pairwise(bounds.tolist()):
            t = self._arrival_times(rng, a, b)
            times.append(t)
            users.append(self._draw_users(rng, self.users.n_signed_up(t)))
        if not times:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(times), np.concatenate(users)

    # ------------------------------------------------------------------ logged data
    def simulate_log(
        self,
        rng: np.random.Generator | None = None,
        policy: SlatePolicy | None = None,
        *,
        progress: bool = False,
    ) -> SimulationLog:
        """Run the site over the whole period (see :func:`.simulate.simulate_log`).

        ``rng`` defaults to the world's own log stream, so that the same config always
        gives the same log.
        """
        rng = rng if rng is not None else component_rngs(self.config.seed)[_STREAM_LOG]
        return simulate_log(self, rng, policy, progress=progress)

    def generate(self, *, progress: bool = False) -> Dataset:
        """The logged dataset of the built-in policy: interactions, catalog and users."""
        log = self.simulate_log(progress=progress)
        return Dataset(
            interactions=log.to_interactions(self.user_ids(), self.item_ids()),
            items=self.catalog(),
            users=self.users_frame(),
            name="world",
        )

    # ------------------------------------------------------------------ helpers
    def _arrival_times(self, rng: np.random.Generator, a: int, b: int) -> np.ndarray:
        cfg = self.config
        scale = cfg.requests_per_user_per_day / SECONDS_PER_DAY
        amp = cfg.time_of_day_amplitude
        # Active mass only grows with time, so its value at the end bounds the rate.
        bound = scale * (1.0 + amp) * self._active_mass(np.asarray(b - 1))
        n = rng.poisson(bound * (b - a))
        t = np.sort(rng.integers(a, b, size=n))
        hour = (t % SECONDS_PER_DAY) / SECONDS_PER_HOUR
        tod = 1.0 + amp * np.cos(2.0 * np.pi * (hour - cfg.peak_hour) / 24.0)
        rate = scale * tod * self._active_mass(t)
        keep = rng.random(n) * bound < rate
        return t[keep].astype(np.int64)

    def _active_mass(self, t: np.ndarray) -> np.ndarray:
        n = self.users.n_signed_up(t)
        return np.where(n > 0, self._activity_cumsum[np.maximum(n - 1, 0)], 0.0)

    def _draw_users(self, rng: np.random.Generator, n_present: np.ndarray) -> np.ndarray:
        mass = self._activity_cumsum[n_present - 1]
        u = np.searchsorted(self._activity_cumsum, rng.random(len(n_present)) * mass, "right")
        # Guards the float edge where the draw lands exactly on the last cumulative sum.
        return np.minimum(u, n_present - 1).astype(np.int64)

    def _users(self, user_idx: IntArray) -> np.ndarray:
        u = np.asarray(user_idx)
        if u.size and (
            not np.issubdtype(u.dtype, np.integer) or u.min() < 0 or u.max() >= self.n_users
        ):
            raise ValueError(
                f"user indices must be integers in 0..{self.n_users - 1} (got {_show(u)})"
            )
        return u

    def _items(self, item_idx: IntArray) -> np.ndarray:
        i = np.asarray(item_idx)
        if i.size and (
            not np.issubdtype(i.dtype, np.integer) or i.min() < -1 or i.max() >= self.n_items
        ):
            raise ValueError(
                f"item indices must be integers in 0..{self.n_items - 1}, or -1 for an empty "
                f"slot (got {_show(i)})"
            )
        return i


def _show(values: np.ndarray) -> str:
    if not np.issubdtype(values.dtype, np.number):
        return f"dtype {values.dtype}"
    return f"values from {values.min()!r} to {values.max()!r}, dtype {values.dtype}"


def _parse_ids(ids: Sequence[str] | np.ndarray, prefix: str, n: int, kind: str) -> np.ndarray:
    values = pd.Series(np.asarray(ids, dtype=object), dtype=object)
    digits = values.str.removeprefix(prefix)
    ok = values.str.startswith(prefix) & digits.str.fullmatch(r"0|[1-9][0-9]*")
    ok = ok.fillna(False).astype(bool)
    idx = np.where(ok, pd.to_numeric(digits.where(ok, "0")), -1).astype(np.int64)
    bad = ~ok.to_numpy() | (idx >= n)
    if bad.any():
        first = values[bad].iloc[0]
        raise KeyError(
            f"{first!r} is not a {kind} id of this world (expected {prefix}0..{prefix}{n - 1})"
        )
    return idx
