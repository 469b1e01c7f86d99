"""Logs every served slate as an :class:`~recops.serving.records.Exposure`, off the reply's path.

The request path builds the record (a few microseconds) and hands it to the event
log's writer thread, which commits it within ``exposure_delay_s`` (50 ms), many
exposures per commit, and flushes it to disk with the next acknowledged write or
within ``exposure_flush_s`` (a second): a killed process loses at most the last 50 ms,
a power loss at most the last second. By default the reply does not wait for that
commit: an exposure is evidence of what was shown, not data the client handed over,
and waiting for an fsync per recommendation would cost a large share of the route's
throughput. With ``ServerSettings.exposure_sync`` the reply waits, so that no
answered slate can be missing from the log even after a power loss. Either way the
writer keeps
submission order, so an exposure is committed before any click that answers it
(the client only learns the ``request_id`` from the reply).

An exposure's ``request_id`` is the request's own id
(:func:`~recops.serving.logs.unique_request_id`): the reply's ``X-Request-ID``
header, the reply body's ``request_id`` and the log lines say the same id. It is
always made by the server, ``<12 random hex digits per process>-<counter>`` (unique
across workers and restarts without a UUID per request), never a client's
``X-Request-ID``: clicks join on it, so it must be unique.
"""

from __future__ import annotations

import asyncio

from recops.serving.eventlog import EventLog
from recops.serving.experiments import Plan
from recops.serving.logs import RequestIdMaker, unique_request_id
from recops.serving.metrics import ServerMetrics
from recops.serving.records import Assignment, Exposure, JSONValue
from recops.serving.schemas import RecommendRequest
from recops.serving.slates import TEAM_DRAFT, ServedSlate


class ExposureLogger:
    """Writes exposures and first assignments through the event log.

    Parameters
    ----------
    event_log:
        Where the records go.
    metrics:
        Counts written and failed exposures.
    sync:
        Whether :meth:`log` waits for the commit.
    remembered_units:
        How many (experiment, unit) pairs this process remembers as already
        assigned, so that it does not resubmit them on every request. When full it
        forgets them all: a resubmitted assignment is ignored by the log (logged
        once), so forgetting costs a little writing, never a duplicate.
    """

    def __init__(
        self,
        event_log: EventLog,
        metrics: ServerMetrics,
        *,
        sync: bool = False,
        remembered_units: int = 1_000_000,
    ) -> None:
        if remembered_units < 1:
            raise ValueError(
                f"`remembered_units` must be a positive int (got {remembered_units!r})"
            )
        self.event_log = event_log
        self.metrics = metrics
        self.sync = sync
        self.remembered_units = remembered_units
        self._make_id = RequestIdMaker()
        self._assigned: set[tuple[str, str]] = set()
        self._dropped = 0

    def request_id(self) -> str:
        """The exposure id of the current request: its own id, made unique by the server."""
        return unique_request_id(self._make_id)

    def _first_time(self, assignment: Assignment | None) -> list[Assignment]:
        if assignment is None:
            return []
        key = (assignment.experiment, assignment.unit)
        if key in self._assigned:
            return []
        if len(self._assigned) >= self.remembered_units:
            self._assigned.clear()
        self._assigned.add(key)
        return [assignment]

    async def log(self, exposure: Exposure, assignment: Assignment | None = None) -> None:
        """Write ``exposure`` (and the unit's assignment, the first time); wait if ``sync``."""
        assigned = self._first_time(assignment)
        if self.sync:
            await asyncio.wrap_future(self.event_log.submit_exposures([exposure], assigned))
        else:
            self.event_log.queue_exposures([exposure], assigned)
        exposures = self.metrics.exposures
        exposures.child(exposure.experiment or "none", exposure.variant or "none")[0] += 1
        dropped = self.event_log.dropped_exposures
        if dropped != self._dropped:
            self.metrics.exposure_errors.inc(dropped - self._dropped)
            self._dropped = dropped


def request_context(request: RecommendRequest, strategy: str, plan: Plan) -> dict[str, JSONValue]:
    """The part of the request an analysis may want: strategy, size and the filters set."""
    context: dict[str, JSONValue] = {"strategy": strategy, "k": request.k}
    if request.categories is not None:
        context["categories"] = list(request.categories)
    if request.max_age_s is not None:
        context["max_age_s"] = request.max_age_s
    if not request.exclude_seen:
        context["exclude_seen"] = False
    if request.history:
        context["history"] = len(request.history)
    fallback = plan.arms[0].fallback
    if fallback is not None:
        context["fallback"] = fallback
    return context


def build_exposure(
    request_id: str,
    now: int,
    plan: Plan,
    served: ServedSlate,
    context: dict[str, JSONValue],
) -> Exposure:
    """The exposure record of one served slate."""
    arm = plan.arms[0]
    policy: dict[str, JSONValue] = arm.spec
    if served.sources is not None:
        policy = {"kind": TEAM_DRAFT, "arms": [a.spec for a in plan.arms]}
        context = {**context, "models": [f"{a.bundle.name}/{a.bundle.version}" for a in plan.arms]}
    return Exposure(
        request_id=request_id,
        timestamp=now,
        unit=plan.unit,
        model=arm.bundle.name,
        version=arm.bundle.version,
        policy=policy,
        items=served.items,
        propensities=served.propensities,
        scores=served.scores,
        experiment=plan.experiment,
        variant=plan.variant,
        sources=served.sources,
        candidates=served.candidates,
        candidate_scores=served.candidate_scores,
        context=context,
    )


def assignment_of(plan: Plan, now: int) -> Assignment | None:
    """The unit's assignment record, if the plan comes from an experiment."""
    assigned = plan.assignment
    if assigned is None:
        return None
    return Assignment(assigned.experiment, plan.unit, assigned.variant, now)
