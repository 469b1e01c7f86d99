"""Deterministic assignment of units to experiments and variants.

The hash (frozen: the test vectors in ``tests/experiments/test_assignment.py`` must
never change, or a release would reshuffle users mid-experiment)::

    bucket(salt, unit) = int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8],
                                        "big") % 10_000

Three independent hashes place a unit:

1. its position in the layer, ``bucket("layer:" + layer, unit)``. Each experiment of a
   layer owns a fixed segment of the 10,000 layer buckets and uses its first
   ``traffic`` share, so experiments of one layer never share a unit and ramping up
   only adds units;
2. its variant, ``bucket(salt, unit)`` split by the normalised variant weights, so
   ramping never moves a unit between variants;
3. whether it is held out (kept on control, not analysed as a variant),
   ``bucket(salt + ":holdout", unit) < holdout * 10_000``.

The ``"layer:"`` prefix keeps a layer's hash apart from any experiment's: salts
have no ``:``, so an experiment named like a layer (with the default salt, its
name) does not split its units by their position in that layer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from recops.experiments.config import ExperimentConfig

#: Buckets of every hash: the resolution of traffic, weights and holdout (0.01%).
BUCKETS = 10_000
#: Units whose assignment an :class:`Assigner` remembers (about 200 bytes each, some
#: 13 MB when full); when full it forgets them all and hashes again.
REMEMBERED_UNITS = 65_536
LAYER_PREFIX = "layer:"


def bucket(salt: str, unit: str) -> int:
    """The documented hash: ``sha256(f"{salt}:{unit}")``'s first 8 bytes, big-endian, mod 10,000."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def layer_salt(layer: str) -> str:
    """The salt of a layer's hash (see the module docstring for the prefix)."""
    return LAYER_PREFIX + layer


def share_to_buckets(share: float) -> int:
    """Number of buckets of a share in [0, 1] (rounded to the nearest bucket)."""
    return round(share * BUCKETS)


def split_points(weights: Sequence[float]) -> list[int]:
    """Upper bucket bounds of each variant: variant ``i`` owns ``[points[i-1], points[i])``.

    ``points[i] = round(10,000 * (w_0 + ... + w_i) / Σw)``; the last is 10,000.
    """
    if not weights or any(not w > 0 for w in weights):
        raise ValueError(f"`weights` must be positive numbers (got {list(weights)!r})")
    total = math.fsum(weights)
    points: list[int] = []
    running = 0.0
    for w in weights:
        running += w
        points.append(round(BUCKETS * running / total))
    points[-1] = BUCKETS
    return points


@dataclass(frozen=True)
class Segment:
    """Buckets ``[start, start + size)`` of a layer, owned by one experiment."""

    start: int
    size: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.size < 1 or self.start + self.size > BUCKETS:
            raise ValueError(
                f"a segment must lie within 0..{BUCKETS} buckets (got start={self.start}, "
                f"size={self.size})"
            )

    @property
    def end(self) -> int:
        """One past the last bucket."""
        return self.start + self.size

    def overlaps(self, other: Segment) -> bool:
        """Whether the two segments share a bucket."""
        return self.start < other.end and other.start < self.end


class Placed(Protocol):
    """An experiment with its segment (what :meth:`ExperimentStore.running` returns)."""

    @property
    def config(self) -> ExperimentConfig: ...

    @property
    def segment(self) -> Segment: ...


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a unit falls in one layer.

    Parameters
    ----------
    layer, experiment:
        The layer and the experiment the unit is in.
    variant:
        The label to log: the variant's name, ``"holdout"`` for held-out units, or
        ``"interleaved"`` in an interleaving experiment.
    serves:
        The variants whose model and policy make the slate: the variant itself;
        the control for held-out units; both, control first, for interleaving.
    holdout:
        Whether the unit is held out.
    """

    layer: str
    experiment: str
    variant: str
    serves: tuple[str, ...]
    holdout: bool = False


class _Arm:
    """One experiment's precomputed tables (bucket → Assignment)."""

    __slots__ = ("by_bucket", "held_out", "holdout_buckets", "holdout_hash", "variant_hash")

    def __init__(self, config: ExperimentConfig) -> None:
        from recops.experiments.config import HOLDOUT, INTERLEAVED

        layer, name, control = config.layer, config.name, config.control
        self.variant_hash = hashlib.sha256(f"{config.salt}:".encode())
        self.holdout_hash = hashlib.sha256(f"{config.salt}:holdout:".encode())
        self.holdout_buckets = share_to_buckets(config.holdout)
        self.held_out = Assignment(layer, name, HOLDOUT, (control,), holdout=True)
        if config.type == "interleaving":
            others = tuple(v.name for v in config.variants if v.name != control)
            self.by_bucket: list[Assignment] = [
                Assignment(layer, name, INTERLEAVED, (control, *others))
            ] * BUCKETS
            return
        points = split_points([v.weight for v in config.variants])
        self.by_bucket = []
        low = 0
        for variant, high in zip(config.variants, points, strict=True):
            one = Assignment(layer, name, variant.name, (variant.name,))
            self.by_bucket.extend([one] * (high - low))
            low = high


class _Layer:
    __slots__ = ("arms", "hash", "kind")

    def __init__(self, name: str, kind: str) -> None:
        self.hash = hashlib.sha256(f"{layer_salt(name)}:".encode())
        self.kind = kind
        self.arms: list[_Arm | None] = [None] * BUCKETS


def _hashed(prefix: hashlib._Hash, unit: bytes) -> int:
    h = prefix.copy()
    h.update(unit)
    return int.from_bytes(h.digest()[:8], "big") % BUCKETS


class Assigner:
    """Assigns a unit in every layer, from tables precomputed for the live experiments.

    Parameters
    ----------
    experiments:
        Running experiments with their segments (:meth:`ExperimentStore.running`).
    now:
        Unix seconds; experiments whose ``start``/``stop`` window excludes ``now``
        are left out. Rebuild at :attr:`expires_at`, when the next window opens or
        closes.

    Raises
    ------
    ValueError
        When two experiments of a layer overlap or randomise different units.
    """

    def __init__(self, experiments: Iterable[Placed], now: float) -> None:
        self.experiments: dict[str, ExperimentConfig] = {}
        self.expires_at = math.inf
        layers: dict[str, _Layer] = {}
        taken: dict[str, list[tuple[Segment, str]]] = {}
        for placed in experiments:
            config, segment = placed.config, placed.segment
            start, stop = _seconds(config.start), _seconds(config.stop)
            self.expires_at = min(
                [self.expires_at] + [t for t in (start, stop) if t is not None and t > now]
            )
            if (start is not None and now < start) or (stop is not None and now >= stop):
                continue
            used = share_to_buckets(config.traffic)
            if used > segment.size:
                raise ValueError(
                    f"experiment {config.name!r}: traffic {config.traffic} needs {used} buckets, "
                    f"its segment has {segment.size}"
                )
            for other, other_name in taken.setdefault(config.layer, []):
                if other.overlaps(segment):
                    raise ValueError(
                        f"experiments {other_name!r} and {config.name!r} overlap in layer "
                        f"{config.layer!r} (buckets {other} and {segment})"
                    )
            taken[config.layer].append((segment, config.name))
            layer = layers.setdefault(config.layer, _Layer(config.layer, config.unit))
            if layer.kind != config.unit:
                raise ValueError(
                    f"layer {config.layer!r} mixes units: {config.name!r} randomises "
                    f"{config.unit}, others {layer.kind}"
                )
            arm = _Arm(config)
            layer.arms[segment.start : segment.start + used] = [arm] * used
            self.experiments[config.name] = config
        self._layers = tuple(layers.values())
        # The assignments of units seen since this table was built (it never changes,
        # so neither do they): a dict lookup per request instead of two SHA-256s.
        self._seen: dict[tuple[str | None, str | None], tuple[Assignment, ...]] = {}

    def assign(
        self, user_id: str | None = None, anonymous_id: str | None = None
    ) -> tuple[Assignment, ...]:
        """The unit's assignment in each layer where it falls into an experiment.

        A layer randomises either ``user_id`` or ``anonymous_id``; a request
        without that id is in none of the layer's experiments.
        """
        if not self._layers:
            return ()
        key = (user_id, anonymous_id)
        found = self._seen.get(key)
        if found is not None:
            return found
        found = self._assign(user_id, anonymous_id)
        if len(self._seen) >= REMEMBERED_UNITS:
            self._seen.clear()
        self._seen[key] = found
        return found

    def _assign(self, user_id: str | None, anonymous_id: str | None) -> tuple[Assignment, ...]:
        user = None if user_id is None else user_id.encode()
        anonymous = None if anonymous_id is None else anonymous_id.encode()
        out: list[Assignment] = []
        for layer in self._layers:
            unit = user if layer.kind == "user_id" else anonymous
            if unit is None:
                continue
            arm = layer.arms[_hashed(layer.hash, unit)]
            if arm is None:
                continue
            if arm.holdout_buckets and _hashed(arm.holdout_hash, unit) < arm.holdout_buckets:
                out.append(arm.held_out)
            else:
                out.append(arm.by_bucket[_hashed(arm.variant_hash, unit)])
        return tuple(out)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
