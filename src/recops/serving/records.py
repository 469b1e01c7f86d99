"""What the event log stores: feedback events, exposures (served slates) and assignments.

An :class:`Exposure` is written by the server for every slate it serves: which
items it showed where, with the exact probability its ranking policy had of showing
each item at that position. A click sent to ``POST /v1/events`` with the exposure's
``request_id`` is joined to it afterwards, so A/B analysis, off-policy evaluation and
training all read the same log, and no client-asserted propensity is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ContextValue = str | int | float | bool | None
JSONValue = ContextValue | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True)
class Event:
    """One piece of feedback, in the interaction schema of :mod:`recops.data.schema`.

    Parameters
    ----------
    user_id, item_id:
        Who did what to which item.
    event:
        The event type (``impression``, ``click``, ...).
    value:
        The event's value (1.0 for a click, the rating for a rating, ...).
    timestamp:
        Unix seconds, UTC.
    context:
        Optional context columns (``position``, ``request_id``, ...), carried along
        untouched; ``request_id`` joins the event to the exposure it answers.
    """

    user_id: str
    item_id: str
    event: str
    value: float
    timestamp: int
    context: Mapping[str, ContextValue] | None = None

    @property
    def request_id(self) -> str | None:
        """The served slate this event answers, if it says."""
        value = None if self.context is None else self.context.get("request_id")
        return None if value is None else str(value)


#: ``(id, user_id, item_id, event, timestamp)``: an event as the online state sees it.
Activity = tuple[int, str, str, str, int]


# Not frozen: a frozen dataclass's __init__ costs about 1 µs more, per request.
@dataclass(slots=True)
class Exposure:
    """One served slate, as the server logs it.

    Parameters
    ----------
    request_id:
        Unique id of the request, also in the reply; events carrying it are joined.
    timestamp:
        Unix seconds of the request (the server's clock).
    unit:
        The randomisation unit: the user id, or the client's anonymous id.
    model, version:
        The model version that scored the candidates.
    policy:
        The ranking policy's spec (``{"kind": "greedy"}``, ...), as JSON.
    items:
        Shown items, in position order (position 0 first).
    propensities:
        ``P(items[p] shown at position p)`` under the policy, exact.
    scores:
        The model's scores of the shown items.
    experiment, variant:
        The experiment and the variant the unit is assigned to (None outside one).
    sources:
        Interleaving: the variant that contributed each position.
    candidates, candidate_scores:
        The candidates the policy chose from, with their scores: what off-policy
        evaluation of another policy on this log needs.
    context:
        The request's context (strategy, filters, ``k``; a fallback reason).
    """

    request_id: str
    timestamp: int
    unit: str
    model: str
    version: str
    policy: Mapping[str, JSONValue]
    items: Sequence[str]
    propensities: Sequence[float]
    scores: Sequence[float]
    experiment: str | None = None
    variant: str | None = None
    sources: Sequence[str] | None = None
    candidates: Sequence[str] | None = None
    candidate_scores: Sequence[float] | None = None
    context: Mapping[str, JSONValue] | None = None


# Not frozen: a frozen dataclass's __init__ costs about 1 µs more, per request.
@dataclass(slots=True)
class Assignment:
    """The first time a unit was assigned to a variant of an experiment (logged once)."""

    experiment: str
    unit: str
    variant: str
    timestamp: int
