"""The users of the world: signup times, regions, activity, latents and drifting interests.

Users are generated in signup order, so that user index ``k`` (id ``"u{k}"``) signed
up no later than user ``k + 1`` and the users present at any time form a prefix of
the index range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.data.schema import USER_ID
from recops.data.world.config import SECONDS_PER_DAY, WorldConfig

SIGNUP_TIME = "signup_time"
REGION = "region"

# Users present at the start signed up at some time during the year before it.
_HISTORY_SECONDS = 365 * SECONDS_PER_DAY
# Dirichlet draws can underflow to exactly 0; this floor keeps their logarithm finite
# while leaving such a category practically uninteresting.
_MIN_INTEREST = 1e-6


@dataclass(frozen=True)
class UserTable:
    """The true attributes of every user, in signup order (index = user index).

    Parameters
    ----------
    region_names:
        Name of each home region.
    start_time:
        Unix second of the first interest knot (the start of the period).
    signup_time:
        ``(n_users,)`` int64 unix seconds, non-decreasing.
    region:
        ``(n_users,)`` int64 home region.
    activity:
        ``(n_users,)`` relative visit rate, mean 1 over users.
    latent:
        ``(n_users, latent_dim)`` float32 latent vector.
    interest_logits:
        ``(n_users, days + 1, n_categories)`` float32 interest logits at the start of
        each day; interests in between are the softmax of the linear interpolation.
    """

    region_names: tuple[str, ...]
    start_time: int
    signup_time: np.ndarray
    region: np.ndarray
    activity: np.ndarray
    latent: np.ndarray
    interest_logits: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.signup_time)

    def n_signed_up(self, t: np.ndarray | int) -> np.ndarray:
        """How many users had signed up at or before ``t`` (they are the first ones)."""
        return np.searchsorted(self.signup_time, np.asarray(t, dtype=np.int64), side="right")

    def interests(self, user_idx: np.ndarray | int, t: np.ndarray | int) -> np.ndarray:
        """Interest distribution over categories of users at times (broadcast together).

        Returns
        -------
        numpy.ndarray
            Shape ``broadcast(user_idx, t).shape + (n_categories,)``; rows sum to 1.
        """
        u, tt = np.broadcast_arrays(np.asarray(user_idx), np.asarray(t))
        n_knots = self.interest_logits.shape[1]
        day = np.clip((tt - self.start_time) / SECONDS_PER_DAY, 0.0, n_knots - 1.0)
        k = np.minimum(np.floor(day).astype(np.int64), n_knots - 2)
        w = (day - k)[..., None]
        logits = (1.0 - w) * self.interest_logits[u, k] + w * self.interest_logits[u, k + 1]
        logits = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=-1, keepdims=True)

    def to_frame(self) -> pd.DataFrame:
        """The users table: ``user_id``, ``signup_time`` and ``region`` (no latent truth)."""
        regions = np.asarray(self.region_names, dtype=object)[self.region]
        return pd.DataFrame(
            {
                USER_ID: pd.Series(user_id_array(self.n_users), dtype=object),
                SIGNUP_TIME: pd.Series(self.signup_time, dtype=np.int64),
                REGION: pd.Series(regions, dtype=object),
            }
        )


def user_id_array(n: int) -> np.ndarray:
    """Object array of the ids ``"u0" .. "u{n-1}"``."""
    return np.asarray([f"u{k}" for k in range(n)], dtype=object)


def generate_users(config: WorldConfig, rng: np.random.Generator) -> UserTable:
    """Draw the users of ``config``.

    Parameters
    ----------
    config:
        The world configuration.
    rng:
        Source of randomness, used for the users only.

    Returns
    -------
    UserTable
        Users sorted by signup time.
    """
    n, c = config.n_users, config.n_categories
    n_initial = round(n * config.initial_user_fraction)
    signup = np.sort(
        np.concatenate(
            [
                rng.uniform(config.start_time - _HISTORY_SECONDS, config.start_time, n_initial),
                rng.uniform(config.start_time, config.end_time, n - n_initial),
            ]
        )
    ).astype(np.int64)

    region_sizes = rng.dirichlet(np.full(config.n_regions, 5.0))
    region = rng.choice(config.n_regions, size=n, p=region_sizes)
    # Each region leans towards some categories: half of a user's prior mean is the
    # region's profile, half is uniform.
    profiles = rng.dirichlet(np.ones(c), size=config.n_regions)
    prior_mean = 0.5 / c + 0.5 * profiles[region]
    gamma = rng.gamma(config.interest_concentration * c * prior_mean)
    interests = gamma / np.maximum(gamma.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    initial_logits = np.log(np.maximum(interests, _MIN_INTEREST))

    sigma = config.activity_sigma
    activity = rng.lognormal(mean=-(sigma**2) / 2.0, sigma=sigma, size=n)
    latent = rng.normal(size=(n, config.latent_dim)).astype(np.float32)
    return UserTable(
        region_names=tuple(f"region{k}" for k in range(config.n_regions)),
        start_time=config.start_time,
        signup_time=signup,
        region=region.astype(np.int64),
        activity=activity,
        latent=latent,
        interest_logits=_drift(initial_logits, config, rng),
    )


def _drift(initial: np.ndarray, config: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """Daily interest logits: a Gaussian random walk plus occasional jumps.

    On a jump a user adopts a random category as the new main interest: its logit
    becomes the current maximum plus ``ln 2`` (twice as likely as the old favourite).
    A configured shock adds ``shock_strength`` to every user's ``shock_category``
    logit at the knot of ``shock_day``, so interests move there during the day before.
    """
    n, c = initial.shape
    knots = np.empty((n, config.days + 1, c), dtype=np.float32)
    current = initial - initial.max(axis=1, keepdims=True)
    knots[:, 0] = current
    rows = np.arange(n)
    for day in range(config.days):
        current = current + rng.normal(0.0, config.drift_rate, size=(n, c))
        jumps = rng.random(n) < config.interest_shift_probability
        target = rng.integers(0, c, size=(n,))
        current[rows[jumps], target[jumps]] = current[jumps].max(axis=1) + np.log(2.0)
        if config.shock_day == day + 1:
            current[:, config.shock_category] += config.shock_strength
        # Softmax is shift-invariant, so re-centring keeps values small over long periods.
        current = current - current.max(axis=1, keepdims=True)
        knots[:, day + 1] = current
    return knots
