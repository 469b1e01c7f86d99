"""Metric names of the per-unit table: ``clicks`` (a per-unit mean) or ``clicks/impressions``.

A per-unit mean metric is one numeric column; a ratio metric ``num/den`` is the ratio
of two columns' sums over the units of an arm, analysed by the delta method (never by
counting impressions as independent trials). CUPED reads ``pre_<column>`` for every
column of the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recops.experiments.stats.cuped import CupedArm
from recops.experiments.stats.summary import ArmSummary, summarize_mean, summarize_ratio

PRE_PREFIX = "pre_"


@dataclass(frozen=True)
class Metric:
    """A metric of the per-unit table.

    Parameters
    ----------
    numerator:
        The column of a per-unit mean metric, or the numerator of a ratio.
    denominator:
        The denominator column of a ratio metric; None for a per-unit mean.
    """

    numerator: str
    denominator: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Metric:
        """``"clicks"`` → a per-unit mean; ``"clicks/impressions"`` → a ratio metric."""
        if not isinstance(spec, str):
            raise ValueError(f"a metric must be a column name or 'num/den' (got {spec!r})")
        parts = [part.strip() for part in spec.split("/")]
        if len(parts) > 2 or not all(parts):
            raise ValueError(
                f"a metric must be a column name (`clicks`) or a ratio of two columns "
                f"(`clicks/impressions`) (got {spec!r})"
            )
        return cls(parts[0], parts[1] if len(parts) == 2 else None)

    @property
    def name(self) -> str:
        """The metric's name as written: ``clicks`` or ``clicks/impressions``."""
        return (
            self.numerator if self.denominator is None else f"{self.numerator}/{self.denominator}"
        )

    @property
    def kind(self) -> str:
        """``"mean"`` or ``"ratio"``."""
        return "mean" if self.denominator is None else "ratio"

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the metric reads."""
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)

    @property
    def pre_columns(self) -> tuple[str, ...]:
        """The pre-period columns CUPED reads (``pre_<column>`` for each column)."""
        return tuple(PRE_PREFIX + column for column in self.columns)

    def summarize(self, columns: dict[str, np.ndarray]) -> ArmSummary:
        """The arm's estimate and influence variance from its rows' columns."""
        if self.denominator is None:
            return summarize_mean(columns[self.numerator])
        return summarize_ratio(columns[self.numerator], columns[self.denominator])

    def cuped_arm(self, columns: dict[str, np.ndarray]) -> CupedArm:
        """The arm's post and pre columns for :func:`~recops.experiments.stats.cuped.cuped`."""
        pre = self.pre_columns
        if self.denominator is None:
            return CupedArm(post=columns[self.numerator], pre=columns[pre[0]])
        return CupedArm(
            post=columns[self.numerator],
            pre=columns[pre[0]],
            post_den=columns[self.denominator],
            pre_den=columns[pre[1]],
        )
