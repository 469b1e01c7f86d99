"""Guardrail metrics: a change that must not hurt a metric by more than a tolerance.

A guardrail names a metric, the direction that is harm (``"increase"`` for latency,
``"decrease"`` for revenue) and the largest tolerated relative change ``m``. With the
relative lift ``Δ%`` and its interval ``[lo, hi]``, the *harm* is ``h = Δ%`` for
``"increase"`` and ``h = −Δ%`` for ``"decrease"`` (interval mapped alike), and:

* **pass** when ``h_hi < m``: the interval rules out harm beyond the tolerance (a
  non-inferiority test at the interval's level);
* **fail** when ``h_lo > 0`` and ``h > m``: the harm is significant and its estimate
  exceeds the tolerance;
* **inconclusive** otherwise: harm beyond the tolerance is still possible.

References
----------
Kohavi, R., Tang, D. and Xu, Y. (2020). Trustworthy Online Controlled Experiments,
ch. 21 (guardrail metrics). Schultzberg, M., Ankargren, S. and Frånberg, M. (2024).
Risk-aware product decisions in A/B tests with multiple metrics. arXiv:2402.11609.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import numpy as np

from recops.experiments.stats.fixed import Lift

Direction = Literal["increase", "decrease"]
Verdict = Literal["pass", "fail", "inconclusive"]
_DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not move in its harmful direction by more than a tolerance.

    Parameters
    ----------
    metric:
        A metric name (``latency_ms`` or ``errors/requests``).
    direction:
        Which change is harm: ``"increase"`` or ``"decrease"``.
    max_relative_change:
        Largest tolerated harm as a relative change (0.05 = 5%), ``>= 0``.
    """

    metric: str
    direction: Direction
    max_relative_change: float

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise ValueError(f"guardrail `metric` must be a metric name (got {self.metric!r})")
        if self.direction not in _DIRECTIONS:
            raise ValueError(
                f"guardrail `direction` must be 'increase' or 'decrease' (got {self.direction!r})"
            )
        change = self.max_relative_change
        if isinstance(change, bool) or not isinstance(change, int | float) or not change >= 0:
            raise ValueError(
                f"guardrail `max_relative_change` must be a number >= 0 (got {change!r})"
            )
        if not np.isfinite(change):
            raise ValueError(f"guardrail `max_relative_change` must be finite (got {change!r})")

    @classmethod
    def from_spec(cls, spec: object) -> Guardrail:
        """A guardrail from ``"metric:direction:max_relative_change"``, a mapping, or any
        object with ``metric``, ``direction`` and ``max_relative_change`` attributes
        (such as an experiment config's guardrail)."""
        if isinstance(spec, Guardrail):
            return spec
        if isinstance(spec, str):
            parts = spec.rsplit(":", 2)
            if len(parts) != 3:
                raise ValueError(
                    "a guardrail must be METRIC:DIRECTION:MAX_RELATIVE_CHANGE, e.g. "
                    f"'latency_ms:increase:0.05' (got {spec!r})"
                )
            metric, direction, change = parts
            try:
                value = float(change)
            except ValueError as exc:
                raise ValueError(
                    f"guardrail {spec!r}: MAX_RELATIVE_CHANGE must be a number (got {change!r})"
                ) from exc
            return cls(metric.strip(), cast(Direction, direction.strip()), value)
        if isinstance(spec, Mapping):
            fields = spec
        else:
            fields = {
                k: getattr(spec, k)
                for k in ("metric", "direction", "max_relative_change")
                if hasattr(spec, k)
            }
        missing = [k for k in ("metric", "direction", "max_relative_change") if k not in fields]
        if missing:
            raise ValueError(f"guardrail {spec!r} lacks {missing}")
        return cls(
            str(fields["metric"]),
            cast(Direction, fields["direction"]),
            fields["max_relative_change"],
        )


@dataclass(frozen=True)
class GuardrailVerdict:
    """A guardrail's verdict for one variant.

    Parameters
    ----------
    metric, direction, max_relative_change:
        The guardrail.
    variant:
        The treatment judged.
    harm, harm_ci_low, harm_ci_high:
        The relative change in the harmful direction and its interval.
    verdict:
        ``"pass"``, ``"fail"`` or ``"inconclusive"`` (module docstring).
    reason:
        One sentence for the reader.
    """

    metric: str
    direction: str
    max_relative_change: float
    variant: str
    harm: float
    harm_ci_low: float
    harm_ci_high: float
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """All fields, under their names."""
        return asdict(self)


def judge_guardrail(guardrail: Guardrail, variant: str, relative: Lift) -> GuardrailVerdict:
    """The verdict of ``guardrail`` for ``variant`` from its relative lift (module docstring).

    Parameters
    ----------
    guardrail:
        The guardrail.
    variant:
        The treatment judged.
    relative:
        The guardrail metric's relative lift of ``variant`` against control, with the
        interval the decision reads (fixed-horizon or confidence sequence).
    """
    sign = 1.0 if guardrail.direction == "increase" else -1.0
    harm = sign * relative.estimate
    low, high = sorted((sign * relative.ci_low, sign * relative.ci_high))
    tol = guardrail.max_relative_change
    shown = f"harm ({guardrail.direction}) {harm:+.2%}, interval [{low:+.2%}, {high:+.2%}]"
    verdict: Verdict
    if not np.isfinite([harm, low, high]).all():
        verdict = "inconclusive"
        reason = f"guardrail {guardrail.metric}: not enough data to estimate its change"
    elif high < tol:
        verdict = "pass"
        reason = f"guardrail {guardrail.metric}: {shown}, harm below the {tol:.2%} tolerance"
    elif low > 0 and harm > tol:
        verdict = "fail"
        reason = f"guardrail {guardrail.metric} failed: {shown}, beyond the {tol:.2%} tolerance"
    else:
        verdict = "inconclusive"
        reason = (
            f"guardrail {guardrail.metric}: {shown}, harm beyond the {tol:.2%} tolerance "
            "not ruled out yet"
        )
    return GuardrailVerdict(
        metric=guardrail.metric,
        direction=guardrail.direction,
        max_relative_change=float(tol),
        variant=variant,
        harm=float(harm),
        harm_ci_low=float(low),
        harm_ci_high=float(high),
        verdict=verdict,
        reason=reason,
    )
