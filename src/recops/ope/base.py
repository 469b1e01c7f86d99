"""What every estimator returns, and the one code path that turns terms into an estimate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np

from recops.ope.intervals import Terms, bootstrap_interval, kish_ess, normal_interval

IntervalMethod = Literal["normal", "bootstrap"]
BatchT = TypeVar("BatchT")


@dataclass(frozen=True)
class Estimate:
    """An estimated policy value with its interval and overlap diagnostics.

    Parameters
    ----------
    estimator:
        Short name of the estimator (``"ips"``, ``"dr"``, ...).
    value:
        The estimated policy value.
    ci_low, ci_high:
        Bounds of the ``1 - alpha`` confidence interval.
    std_error:
        Standard error behind the interval (delta method, or bootstrap sd).
    interval:
        ``"normal"`` or ``"bootstrap"``.
    alpha:
        Significance level of the interval.
    ess:
        Kish effective sample size of the importance weights ``π_e / π_b``: the
        number of on-policy samples the logs are worth for this target.
    n:
        Number of independent units (rows, or slates for slate estimators).
    max_weight:
        Largest importance weight.
    params:
        Hyper-parameters actually used (e.g. a tuned threshold).
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    std_error: float
    interval: str
    alpha: float
    ess: float
    n: int
    max_weight: float
    params: dict[str, float] = field(default_factory=dict)

    @property
    def ci_width(self) -> float:
        """Width of the confidence interval."""
        return self.ci_high - self.ci_low

    @property
    def ess_fraction(self) -> float:
        """ESS as a fraction of ``n``: 1 on-policy, near 0 when overlap is poor."""
        return self.ess / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class BaseEstimator(ABC, Generic[BatchT]):
    """Base class: subclasses state their per-unit :class:`Terms` and weights."""

    name: ClassVar[str]

    @abstractmethod
    def terms(self, batch: BatchT) -> Terms:
        """Per-unit terms whose combination is the estimate."""

    @abstractmethod
    def importance_weights(self, batch: BatchT) -> np.ndarray:
        """The importance weights whose Kish ESS measures overlap."""

    def params(self, batch: BatchT) -> dict[str, float]:
        """Hyper-parameters used on ``batch`` (empty when there are none)."""
        return {}

    def resolved(self, batch: BatchT) -> BaseEstimator[BatchT]:
        """This estimator with any data-tuned hyper-parameter fixed to its value on ``batch``.

        :meth:`estimate` tunes once through it instead of once per quantity.
        """
        return self

    def estimate_policy_value(self, batch: BatchT) -> float:
        """Point estimate of the target policy's value."""
        return self.terms(batch).value()

    def estimate(
        self,
        batch: BatchT,
        *,
        interval: IntervalMethod = "normal",
        alpha: float = 0.05,
        n_bootstrap: int = 1000,
        random_state: int | np.random.Generator | None = None,
    ) -> Estimate:
        """Point estimate, confidence interval and effective sample size.

        Parameters
        ----------
        batch:
            Inputs built from the logs and the target policy.
        interval:
            ``"normal"`` (delta method; fast) or ``"bootstrap"`` (percentile).
        alpha:
            Significance level; the interval covers ``1 - alpha``.
        n_bootstrap:
            Number of bootstrap resamples (bootstrap only).
        random_state:
            Seed or generator for the bootstrap.

        Returns
        -------
        Estimate
        """
        fixed = self.resolved(batch)
        terms = fixed.terms(batch)
        if interval == "normal":
            low, high, se = normal_interval(terms, alpha)
        elif interval == "bootstrap":
            low, high, se = bootstrap_interval(terms, alpha, n_bootstrap, random_state)
        else:
            raise ValueError(f"`interval` must be 'normal' or 'bootstrap' (got {interval!r})")
        weights = fixed.importance_weights(batch)
        return Estimate(
            estimator=self.name,
            value=terms.value(),
            ci_low=low,
            ci_high=high,
            std_error=se,
            interval=interval,
            alpha=alpha,
            ess=kish_ess(weights),
            n=terms.n_units,
            max_weight=float(np.max(weights)),
            params=fixed.params(batch),
        )
