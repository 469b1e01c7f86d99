"""Step ``validate``: the schema checks of ``recops.data.validation``, then data checks.

The schema is enforced (an invalid row fails the step with its line and field).
Then the data's statistics (:class:`DataStats`) are compared with those of the last
successful run (the pipeline passes them through :func:`~recops.pipelines.previous`):

* **volume**: ``|n / n_last − 1| <= max_volume_change`` for the number of positive
  events (a feed that breaks, or doubles, shows here);
* **category mix**: the Jensen–Shannon distance (base 2, in [0, 1]) between the share
  of positive events per item category now and last time is at most
  ``max_category_distance`` (J. Lin, *Divergence measures based on the Shannon
  entropy*, IEEE Trans. Inf. Theory 37(1), 1991); skipped without a catalog.

Each check is reported with its value and threshold (:class:`DataReport`), for the
gate that comes after; ``fail_on_check`` makes a failed check stop the run instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from recops.data.schema import CATEGORIES, EVENT, ITEM_ID, TIMESTAMP, USER_ID, Dataset
from recops.data.validation import validate_interactions, validate_items, validate_users
from recops.pipelines.artifacts import Metrics, Report
from recops.pipelines.component import component
from recops.pipelines.training.config import ChecksConfig


class DataStats(Metrics):
    """Sizes and mixes of a dataset's events, the baseline of the next run's checks."""

    events: int
    positives: int
    users: int
    items: int
    catalog_items: int
    first_timestamp: int
    last_timestamp: int
    event_types: dict[str, int]
    category_share: dict[str, float]
    unknown_item_share: float


class Check(Report):
    """One data check: its value against its threshold."""

    name: str
    passed: bool
    value: float | None
    threshold: float
    message: str


class DataReport(Report):
    """All data checks of a run, and whether there was a baseline to compare with."""

    checks: tuple[Check, ...]
    baseline: bool

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)


class Validated(NamedTuple):
    """The outputs of ``validate``."""

    data: Dataset
    stats: DataStats
    report: DataReport


class DataCheckError(ValueError):
    """A data check failed and the config says ``fail_on_check``."""


def _category_share(positives: pd.DataFrame, items: pd.DataFrame) -> dict[str, float]:
    if len(items) == 0 or len(positives) == 0:
        return {}
    main = items.set_index(ITEM_ID)[CATEGORIES].map(lambda c: str(c[0]) if len(c) else "")
    counts = positives[ITEM_ID].map(main).fillna("").value_counts(normalize=True)
    return {str(k): float(v) for k, v in sorted(counts.items())}


def data_stats(data: Dataset, positive_events: tuple[str, ...]) -> DataStats:
    """The statistics of ``data`` the checks compare."""
    events = data.interactions
    positives = events[events[EVENT].isin(positive_events)]
    known = set(data.items[ITEM_ID]) if len(data.items) else set()
    unknown = float((~positives[ITEM_ID].isin(known)).mean()) if known and len(positives) else 0.0
    times = events[TIMESTAMP]
    return DataStats(
        events=len(events),
        positives=len(positives),
        users=int(events[USER_ID].nunique()),
        items=int(events[ITEM_ID].nunique()),
        catalog_items=len(data.items),
        first_timestamp=int(times.min()) if len(times) else 0,
        last_timestamp=int(times.max()) if len(times) else 0,
        event_types={str(k): int(v) for k, v in sorted(events[EVENT].value_counts().items())},
        category_share=_category_share(positives, data.items),
        unknown_item_share=unknown,
    )


def jensen_shannon(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen–Shannon distance (base 2) of two distributions given as share per key."""
    from scipy.spatial.distance import jensenshannon

    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0.0) for k in keys])
    b = np.array([q.get(k, 0.0) for k in keys])
    return float(jensenshannon(a, b, base=2.0))


def run_checks(stats: DataStats, previous: DataStats | None, config: ChecksConfig) -> DataReport:
    """The checks of the module docstring (all passed when there is no baseline)."""
    if previous is None:
        return DataReport(checks=(), baseline=False)
    checks = []
    change = (
        abs(stats.positives / previous.positives - 1.0)
        if previous.positives
        else float("inf")
    )  # fmt: skip
    checks.append(
        Check(
            name="volume",
            passed=change <= config.max_volume_change,
            value=change if np.isfinite(change) else None,
            threshold=config.max_volume_change,
            message=f"{stats.positives:,} positive events, last run {previous.positives:,}",
        )
    )
    if stats.category_share and previous.category_share:
        distance = jensen_shannon(stats.category_share, previous.category_share)
        checks.append(
            Check(
                name="category_mix",
                passed=distance <= config.max_category_distance,
                value=distance,
                threshold=config.max_category_distance,
                message="Jensen–Shannon distance of the category mix of positive events",
            )
        )
    return DataReport(checks=tuple(checks), baseline=True)


@component(code_deps=("recops.data.validation",))
def validate(
    data: Dataset,
    previous: DataStats | None,
    checks: ChecksConfig,
    positive_events: tuple[str, ...] = ("click",),
) -> Validated:
    """Enforce the schema, compute the statistics and check them against the last run's."""
    events, _ = validate_interactions(data.interactions, source="interactions", duplicates=False)
    items = validate_items(data.items, source="items")[0] if len(data.items) else data.items
    users = validate_users(data.users, source="users")[0] if len(data.users) else data.users
    clean = Dataset(events, items, users, name=data.name)
    stats = data_stats(clean, positive_events)
    if stats.positives == 0:
        raise DataCheckError(
            f"no positive events ({', '.join(positive_events)}) among {stats.events:,} events: "
            "set split.events to the event types to learn from"
        )
    report = run_checks(stats, previous, checks)
    if checks.fail_on_check and not report.passed:
        failed = "; ".join(
            f"{c.name}: {c.message} ({c.value} > {c.threshold})"
            for c in report.checks
            if not c.passed
        )
        raise DataCheckError(f"data checks failed: {failed}")
    return Validated(clean, stats, report)
