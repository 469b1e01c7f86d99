"""Request and response bodies of the HTTP API; they are its documentation (OpenAPI).

Bounds live here so that bad input is refused with 422 naming the field before any
model code runs: ``k`` in 1..1000, ids of 1..256 characters, model names and versions
as the repository takes them (1..128 characters), at most 1,000 history items or
exclusions per request (5 in the query string of ``GET /v1/recommend``), at most
10,000 events or new items per batch.

Types are strict: a JSON integer field takes an integer, not ``"10"``, ``10.0`` or
``true``; a boolean takes ``true`` or ``false``, not ``0``; a number field takes any
JSON number. Query strings are converted first (see
:func:`recops.serving.routing.parse_query`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from recops.data.schema import EVENT_TYPES

MAX_K = 1000
MAX_LIST = 1000
MAX_EVENTS = 10_000
MAX_ITEMS = 10_000
#: Publish times from here on are milliseconds, not seconds (as the model's check has it).
MAX_PUBLISH_TIME = 10**11 - 1
#: List fields of the query string of ``GET /v1/recommend``. uvicorn refuses a request
#: line over 64 KiB with a 400 before the app sees it; 17 ids of 256 characters, each
#: percent-encoded from up to 4 UTF-8 bytes a character, stay under it.
MAX_QUERY_LIST = 5
#: Latest unix time accepted (year ~36812): keeps arithmetic on it far from overflow.
MAX_TIME = 2**40
#: A model name or version: a path component of the repository, as
#: :func:`recops.serving.repository.check_name` accepts it (a letter or digit, then
#: letters, digits, ``.``, ``_`` or ``-``, never two dots in a row), written without
#: look-ahead so that JSON Schema tools can generate from it.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9](\.?[A-Za-z0-9_-])*\.?$"
#: The ``Idempotency-Key`` header: 1-255 visible ASCII characters (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"

Id = Annotated[str, Field(min_length=1, max_length=256)]
ModelName = Annotated[str, Field(min_length=1, max_length=128, pattern=MODEL_NAME_PATTERN)]
EventType = Literal[tuple(sorted(EVENT_TYPES))]  # type: ignore[valid-type]
Strategy = Literal["personalized", "cold_start", "similar", "search", "category"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Filters(_Request):
    """Options shared by every recommendation endpoint."""

    k: int = Field(default=10, ge=1, le=MAX_K, description="Number of items to return.")
    exclude_items: list[Id] = Field(
        default_factory=list, max_length=MAX_LIST, description="Items never returned."
    )
    categories: list[Id] | None = Field(
        default=None,
        max_length=100,
        description="Only return items in at least one of these categories.",
    )
    max_age_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TIME,
        description=(
            "Only return items published at most this many seconds before `now` (and not after it)."
        ),
    )
    now: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TIME,
        description="Unix time of the request (default: the server's clock); for replays.",
    )


class RecommendRequest(Filters):
    """User → items. A known user, or an anonymous one who sends recent item ids."""

    user_id: Id | None = Field(default=None, description="The user; may be new or absent.")
    anonymous_id: Id | None = Field(
        default=None,
        description=(
            "A client-chosen id of a visitor without a user id (e.g. a cookie): the unit "
            "of experiments that randomise `anonymous_id`."
        ),
    )
    history: list[Id] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Recent item ids, oldest first, added after the user's online history.",
    )
    exclude_seen: bool = Field(default=True, description="Drop items in the user's history.")


class RecommendQuery(RecommendRequest):
    """``GET /v1/recommend``: the same request in a query string, with short lists.

    List fields are repeated keys (``history=i1&history=i2``), at most
    ``MAX_QUERY_LIST`` each; send longer requests with ``POST``.
    """

    exclude_items: list[Id] = Field(
        default_factory=list, max_length=MAX_QUERY_LIST, description="Items never returned."
    )
    categories: list[Id] | None = Field(
        default=None,
        max_length=MAX_QUERY_LIST,
        description="Only return items in at least one of these categories.",
    )
    history: list[Id] = Field(
        default_factory=list,
        max_length=MAX_QUERY_LIST,
        description="Recent item ids, oldest first, added after the user's online history.",
    )


class SimilarRequest(Filters):
    """Item → items."""

    item_id: Id = Field(description="The item to find neighbours of; it is never returned.")


class SearchRequest(Filters):
    """Query text → items."""

    query: str = Field(min_length=1, max_length=1000, description="Free text.")


class CategoryRequest(Filters):
    """Category → items."""

    category: Id = Field(description="A category the model knows.")


class Recommendations(BaseModel):
    """Ranked items, best first, with the model version that produced them."""

    items: list[str]
    scores: list[float]
    model: str
    version: str
    strategy: Strategy = Field(
        description=(
            "How the list was made: `personalized` (from the user's history), "
            "`cold_start` (no usable history: popularity/freshness prior with the "
            "cold-start user vector), or the endpoint's task."
        )
    )
    request_id: str | None = Field(
        default=None,
        description=(
            "Id of this served slate (user → items): send it with the events it causes "
            "(`POST /v1/events`), so they join the exposure the server logged."
        ),
    )
    experiment: str | None = Field(
        default=None, description="The experiment that chose this slate, if any."
    )
    variant: str | None = Field(
        default=None, description="The unit's variant in `experiment` (`holdout`, ...)."
    )

    def to_json(self) -> bytes:
        """The bytes ``model_dump_json`` gives (see :func:`recommendations_json`)."""
        return recommendations_json(
            self.items,
            self.scores,
            self.model,
            self.version,
            self.strategy,
            self.request_id,
            self.experiment,
            self.variant,
        )


def recommendations_json(
    items: list[str],
    scores: list[float],
    model: str,
    version: str,
    strategy: str,
    request_id: str | None = None,
    experiment: str | None = None,
    variant: str | None = None,
) -> bytes:
    """The JSON of a :class:`Recommendations` reply, encoded by orjson from its fields.

    The server builds replies from values it made itself: encoding them directly
    takes about 1 µs, where constructing the model took about 5 and pydantic's
    serializer of a constructed model 13, on every recommendation. The bytes are
    those of ``Recommendations(...).model_dump_json()`` (tests/serving/test_schemas.py).
    """
    return orjson.dumps(
        {
            "items": items,
            "scores": scores,
            "model": model,
            "version": version,
            "strategy": strategy,
            "request_id": request_id,
            "experiment": experiment,
            "variant": variant,
        }
    )


class EventIn(_Request):
    """One piece of feedback."""

    user_id: Id
    item_id: Id
    event: EventType = Field(description="Event type, as in the interaction schema.")  # type: ignore[valid-type]
    value: float = Field(default=1.0, allow_inf_nan=False, ge=-1e9, le=1e9)
    timestamp: int | None = Field(
        default=None, ge=0, le=MAX_TIME, description="Unix seconds; default: now."
    )
    position: int | None = Field(default=None, ge=0, le=100_000)
    propensity: float | None = Field(default=None, gt=0.0, le=1.0)
    request_id: Id | None = None
    event_id: Id | None = Field(
        default=None,
        description=(
            "A client-chosen unique id of this event (a UUID, say): an event whose id was "
            "stored within the idempotency window is not stored again."
        ),
    )


class EventsRequest(_Request):
    """A batch of events; it is written atomically."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


class WriteHeaders(_Request):
    """Headers of a write that a client may retry."""

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=(
            "A client-chosen key of this request (a UUID, say): a retry with the same key "
            "and the same events, within the idempotency window, stores nothing and gets "
            "the first answer again (with `Idempotent-Replayed: true`); the same key with "
            "other events is refused with 409."
        ),
    )


class EventsAccepted(BaseModel):
    """Sent only after the events are durable in the event log."""

    accepted: int = Field(description="Events of the request in the log (now or before).")
    duplicates: int = Field(
        default=0,
        description="Of those, events whose `event_id` was stored before (not stored again).",
    )


class ItemIn(_Request):
    """A new item, embedded from its content by the served models' item tower."""

    item_id: Id
    title: str | None = Field(
        default=None, max_length=1000, description="Its title; the words feed its vector."
    )
    categories: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="Its categories; those a model does not know are ignored by it.",
    )
    publish_time: int | None = Field(
        default=None,
        ge=0,
        le=MAX_PUBLISH_TIME,
        description=(
            "Unix seconds: it is not served before then (an embargo). Default: unknown, "
            "served at once."
        ),
    )


class ItemsRequest(_Request):
    """New items for the served models; ids a model knows already are left as they are."""

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS)


class VersionItems(BaseModel):
    """What one loaded version of this worker did with the request's items."""

    name: str
    version: str
    added: int = Field(description="Items of the request new to this version, now served.")
    known: int = Field(description="Items of the request this version knew already.")
    n_items: int = Field(description="Items the version serves now.")


class ItemsAdded(BaseModel):
    """Sent once every loaded version of the worker that answers serves the items."""

    received: int = Field(description="Distinct item ids in the request.")
    versions: list[VersionItems]
    appended: bool = Field(
        description=(
            "Whether the items were written to the catalog file (`catalog_updates_path`), "
            "which the other workers, versions loaded later and restarted servers apply."
        )
    )


class ModelVersion(BaseModel):
    """A version in the repository."""

    name: str
    version: str
    loaded: bool
    serving: bool
    n_items: int | None = None
    index: str | None = None
    ivf_nprobe: int | None = Field(
        default=None, description="IVF cells scanned per query (tuned as the version loaded)."
    )
    index_recall: float | None = Field(
        default=None,
        description=(
            "Share of the exact top-10 of sample known users that the IVF index finds "
            "among the candidates re-ranked, at `ivf_nprobe` (measured at load)."
        ),
    )
    load_seconds: float | None = None


WorkerPhase = Literal["up_to_date", "lagging", "stale"]


class WorkerInfo(BaseModel):
    """One worker process of a server started with several (``--workers``)."""

    pid: int
    serving: str | None = Field(description="`name/version` the worker serves.")
    up_to_date: bool = Field(description="Whether it has applied this admin operation.")
    state: WorkerPhase = Field(
        default="up_to_date",
        description=(
            "`lagging`: alive, but has not applied the operation yet (e.g. still "
            "loading); `stale`: not heard of lately (hung, or just died)."
        ),
    )
    last_seen_s: float | None = Field(
        default=None, description="Seconds since the worker was last heard of."
    )
    error: str | None = Field(
        default=None, description="Why the worker's last admin operation failed, if it did."
    )


class ModelsResponse(BaseModel):
    """The repository, what is in memory and what is served."""

    version_policy: str
    serving: ModelVersion | None
    versions: list[ModelVersion]
    workers: list[WorkerInfo] | None = Field(
        default=None,
        description=(
            "With several workers: each live worker's state. An admin reply comes once "
            "its operation reached them all (or the wait timed out)."
        ),
    )


class ModelRef(_Request):
    """Names a version for the admin API."""

    name: ModelName | None = Field(default=None, description="Model name; default: the served one.")
    version: ModelName


class VersionPath(_Request):
    """A model version named in a path (``/v1/models/{name}/versions/{version}/...``)."""

    name: ModelName = Field(description="The model's name in the repository.")
    version: ModelName = Field(description="The version.")


class Status(BaseModel):
    """Health and readiness."""

    status: str
    model: str | None = None
    version: str | None = None
    detail: str | None = None


class VariantStatus(BaseModel):
    """How one variant of a running experiment is served by this server."""

    name: str
    model: str | None = Field(description="The model version it serves, `name/version`.")
    policy: dict[str, object]
    fallback: str | None = Field(
        default=None,
        description="Why its units are served by the control instead (its version failed to load).",
    )


class ExperimentStatus(BaseModel):
    """A running experiment as this server applies it."""

    name: str
    layer: str
    type: str
    traffic: float
    variants: list[VariantStatus]


class ExperimentsResponse(BaseModel):
    """The experiments this server applies now."""

    experiments: list[ExperimentStatus]
    error: str | None = Field(
        default=None, description="Why the last refresh from the experiment store failed."
    )


class Error(BaseModel):
    """Why a request was refused or failed."""

    detail: str


class NotFound(Error):
    """An id the model does not know (``kind`` and ``id`` say which), or a model version."""

    kind: str | None = Field(default=None, description="`item`, `category`, ...")
    id: str | None = Field(default=None, description="The unknown id.")


class ValidationIssue(BaseModel):
    """One offending part of a request."""

    loc: list[str | int] = Field(description="Where: `body`, `query` or `header`, then the path.")
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """A request that does not match its schema: every offending field."""

    detail: list[ValidationIssue]
