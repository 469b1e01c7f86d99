"""The pieces of the ground-truth click model, as pure vectorised functions.

The world composes them (see :mod:`recops.data.world`)::

    P(click | u, i, p, t) = examination(p) * attractiveness(u, i, t)
    examination(p)        = (1 / (p + 1)) ** eta                      (position-based model)
    attractiveness(u,i,t) = sigmoid(base + w_int * interest(u, i, t)
                                    + w_lat * <z_u, z_i> / sqrt(d) + quality_i
                                    + freshness(t - publish_i))
    freshness(age)        = -ln 2 * age / half_life

Reference: the position-based model of Craswell et al., "An experimental comparison
of click position-bias models", WSDM 2008.
"""

from __future__ import annotations

import numpy as np

from recops.data.world.config import SECONDS_PER_HOUR


def examination(position: np.ndarray | int, eta: float) -> np.ndarray:
    """Probability that a user looks at slot ``position`` (0 is the top).

    Parameters
    ----------
    position:
        Zero-based slot indices, any shape.
    eta:
        Strength of the position bias; 0 means every slot is examined.

    Returns
    -------
    numpy.ndarray
        ``(1 / (position + 1)) ** eta``, same shape as ``position``.
    """
    pos = np.asarray(position)
    if pos.size and (not np.issubdtype(pos.dtype, np.integer) or pos.min() < 0):
        raise ValueError(f"`position` must hold non-negative integers (got {pos!r})")
    return (1.0 / (pos + 1.0)) ** eta


def freshness_logit(age_seconds: np.ndarray, half_life_hours: float) -> np.ndarray:
    """The freshness term of the attractiveness logit: ``-ln 2 * age / half_life``.

    Halving the odds every half-life means that, for the small click probabilities
    of news, attractiveness itself roughly halves every ``half_life_hours``.
    Negative ages (not yet published) count as 0; callers mask those items.
    """
    age = np.maximum(np.asarray(age_seconds, dtype=np.float64), 0.0)
    return -np.log(2.0) * age / (half_life_hours * SECONDS_PER_HOUR)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, computed without overflow for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
