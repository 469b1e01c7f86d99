"""The experiments a server applies: who gets which model version through which policy.

:class:`ExperimentRuntime` follows the experiment store (``recops experiment
start|stop|ramp`` write it, in the event log's database file) and turns the running
experiments into a :class:`Plan` per request:

1. the unit (the request's ``user_id``, or its ``anonymous_id`` for experiments that
   randomise it) is assigned by :class:`~recops.experiments.assignment.Assigner`;
2. each variant is an :class:`Arm`: the model version the store pinned for it, kept
   loaded, and its ranking policy (:mod:`recops.experiments.serving_policy`);
3. a variant whose version fails to load serves the control's arm instead, and says
   so (``fallback``), in the exposure log and in ``GET /v1/experiments``;
4. an arm whose version grew by new items (:mod:`recops.serving.items`) serves the
   grown bundle from the next refresh on, with the same policy (a bandit keeps its
   counts, in arrays grown to the new catalog).

When a unit falls into experiments of several layers, the layer whose experiment
was created first decides the slate, and only that experiment logs the unit: each
experiment is analysed on the units it served, and since the layers' hashes are
independent those units are a random sample of its own traffic.

The refresh (store reads, model loads) runs off the event loop; :meth:`plan` only
reads the last table it built, in a few microseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.concurrency import run_in_threadpool

from recops.experiments.assignment import Assigner
from recops.experiments.assignment import Assignment as Assigned
from recops.experiments.bandit import SoftmaxBandit
from recops.experiments.serving_policy import ServingPolicy, build_policy
from recops.experiments.store import ExperimentRecord, ExperimentStore
from recops.serving.loaded_model import LoadedModel, ModelLoadError
from recops.serving.repository import ModelManager, ModelNotFoundError
from recops.serving.schemas import ExperimentStatus, RecommendRequest, VariantStatus

log = logging.getLogger("recops.serving")

#: The policy of requests outside every experiment: the model's own top k.
GREEDY: dict[str, Any] = {"kind": "greedy"}


@dataclass(frozen=True)
class Arm:
    """One variant, ready to serve.

    Parameters
    ----------
    variant:
        The variant's name (what the exposure logs).
    bundle:
        The model version that scores its candidates.
    policy:
        Its ranking policy; ``None`` for greedy (the model's top k, no policy step).
    fallback:
        Why this arm serves the control's version and policy instead of its own.
    """

    variant: str
    bundle: LoadedModel
    policy: ServingPolicy | None
    fallback: str | None = None

    @functools.cached_property
    def spec(self) -> dict[str, Any]:
        """The policy as logged (its configuration: computed once, logged per request)."""
        return GREEDY if self.policy is None else self.policy.spec()

    @property
    def depth(self) -> int:
        """How many ranked candidates the policy chooses from (0: just the top k)."""
        return 0 if self.policy is None else self.policy.pool


# Not frozen: a frozen dataclass's __init__ costs about 1 µs more, per request.
@dataclass(slots=True)
class Plan:
    """How one request is served.

    Parameters
    ----------
    arms:
        One arm, or two for an interleaving experiment (control first).
    unit:
        The randomisation unit (user id, anonymous id, or ``-`` for neither).
    assignment:
        The unit's assignment in the experiment that decides the slate, if any.
    """

    arms: tuple[Arm, ...]
    unit: str
    assignment: Assigned | None = None

    @property
    def experiment(self) -> str | None:
        return None if self.assignment is None else self.assignment.experiment

    @property
    def variant(self) -> str | None:
        return None if self.assignment is None else self.assignment.variant


@dataclass
class _Table:
    """What :meth:`ExperimentRuntime.plan` reads: built whole, then swapped in."""

    assigner: Assigner
    arms: dict[tuple[str, str], Arm]
    records: list[ExperimentRecord]
    version: int
    statuses: list[ExperimentStatus] = field(default_factory=list)
    #: The arms of each (experiment, variants served), filled by the requests.
    served: dict[tuple[str, tuple[str, ...]], tuple[Arm, ...]] = field(default_factory=dict)


def _unit(request: RecommendRequest) -> str:
    return request.user_id or request.anonymous_id or "-"


class ExperimentRuntime:
    """Follows the experiment store and plans each request.

    Parameters
    ----------
    store:
        The experiment store; ``None`` serves every request outside experiments.
    manager:
        Loads the versions the variants need (and keeps them loaded).
    policy_factory:
        Builds a variant's policy from its spec (``build_policy`` by default).
    """

    def __init__(
        self,
        store: ExperimentStore | None,
        manager: ModelManager,
        policy_factory: Callable[..., ServingPolicy] = build_policy,
    ) -> None:
        self.store = store
        self.manager = manager
        self.policy_factory = policy_factory
        self._table: _Table | None = None
        self._default: dict[int, Plan] = {}
        # Refreshes come from the store's follower and from item updates.
        self._lock = threading.Lock()
        #: Why the last refresh failed, if it did (the previous table stays).
        self.error: str | None = None

    # -- per request ---------------------------------------------------------------------

    def plan(self, request: RecommendRequest, default: LoadedModel) -> Plan:
        """The arm(s) that serve ``request``: its experiment's, or ``default`` greedily."""
        table = self._table
        if table is not None:
            for assigned in table.assigner.assign(request.user_id, request.anonymous_id):
                key = (assigned.experiment, assigned.serves)
                arms = table.served.get(key)
                if arms is None:
                    arms = tuple(table.arms[(assigned.experiment, v)] for v in assigned.serves)
                    table.served[key] = arms
                return Plan(arms, _unit(request), assigned)
        return Plan((self._default_arm(default),), _unit(request))

    def _default_arm(self, bundle: LoadedModel) -> Arm:
        key = id(bundle)
        found = self._default.get(key)
        if found is None or found.arms[0].bundle is not bundle:
            self._default = {key: Plan((Arm("", bundle, None),), "-")}
            found = self._default[key]
        return found.arms[0]

    # -- off the request path ---------------------------------------------------------------

    def due(self, now: float | None = None) -> bool:
        """Whether :meth:`refresh` has something to do (the store changed, a window turned)."""
        if self.store is None:
            return False
        table = self._table
        moment = time.time() if now is None else now
        return (
            self.store.changed()
            or (table is not None and moment >= table.assigner.expires_at)
            or (table is not None and self._grown(table))
        )

    def _grown(self, table: _Table) -> bool:
        """Whether an arm's version was replaced in the manager (grown by new items)."""
        loaded = {(b.name, b.version): b for b in self.manager.loaded()}
        return any(
            loaded.get((a.bundle.name, a.bundle.version), a.bundle) is not a.bundle
            for a in table.arms.values()
        )

    def exclusive(self, call: Callable[[], object]) -> object:
        """Run ``call`` while no refresh runs (the bandits' learning, whose arms it swaps)."""
        with self._lock:
            return call()

    def refresh(self, now: float | None = None) -> None:
        """Rebuild the table from the store (blocking: model loads; call it in a thread)."""
        if self.store is None:
            return
        with self._lock:
            self._refresh(time.time() if now is None else now)

    def _refresh(self, moment: float) -> None:
        assert self.store is not None
        try:
            records = self.store.running()
            version = self.store.version()
            previous = self._table
            arms = self._arms(records, previous)
            assigner = Assigner(records, moment)
        except Exception as exc:  # keep serving the last good table, and say why
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("experiments not refreshed: %s", self.error)
            return
        live = set(assigner.experiments)
        statuses = [_status(r, arms) for r in records if r.name in live]
        self._table = _Table(assigner, arms, records, version, statuses)
        self.error = None

    def _arms(
        self, records: list[ExperimentRecord], previous: _Table | None
    ) -> dict[tuple[str, str], Arm]:
        arms: dict[tuple[str, str], Arm] = {}
        for record in records:
            config = record.config
            own: dict[str, Arm | str] = {}
            for variant in config.variants:
                key = (config.name, variant.name)
                old = None if previous is None else previous.arms.get(key)
                ref = record.models.get(variant.name)
                if (
                    old is not None
                    and old.fallback is None
                    and ref is not None
                    and ((old.bundle.name, old.bundle.version) == (ref.model, ref.version))
                ):
                    own[variant.name] = self._follow(old)  # keeps its policy state
                    continue
                own[variant.name] = self._arm(variant.name, ref, variant.policy.model_dump())
            control = own[config.control]
            if isinstance(control, str):
                # Without the control there is nothing to fall back to: the
                # experiment is not applied (its units get the default) until it loads.
                raise ModelLoadError(f"experiment {config.name!r}: control {control}")
            for name, arm in own.items():
                if isinstance(arm, str):
                    arm = Arm(name, control.bundle, control.policy, fallback=arm)
                    log.error("experiment %r variant %r falls back to control: %s",
                              config.name, name, arm.fallback)  # fmt: skip
                arms[(config.name, name)] = arm
        return arms

    def _follow(self, arm: Arm) -> Arm:
        """``arm`` on its version as loaded now, its policy grown to the version's items."""
        key = (arm.bundle.name, arm.bundle.version)
        bundle = next((b for b in self.manager.loaded() if (b.name, b.version) == key), arm.bundle)
        if bundle is arm.bundle:
            return arm
        grow = getattr(arm.policy, "grow", None)
        if grow is not None:
            grow(len(bundle.item_names))
        return dataclasses.replace(arm, bundle=bundle)

    def _arm(self, variant: str, ref: Any, spec: dict[str, Any]) -> Arm | str:
        """An arm, or the reason it cannot serve."""
        if ref is None:
            return f"no model version is pinned for variant {variant!r}"
        try:
            bundle = self.manager.load(ref.model, ref.version)
        except (ModelNotFoundError, ModelLoadError) as exc:
            return f"{ref.model}/{ref.version} could not be loaded: {exc}"
        policy = None if spec.get("kind") == "greedy" else self.policy_factory(
            spec, n_items=len(bundle.item_names)
        )  # fmt: skip
        return Arm(variant, bundle, policy)

    def statuses(self) -> list[ExperimentStatus]:
        """The experiments applied now, as ``GET /v1/experiments`` reports them."""
        table = self._table
        return [] if table is None else list(table.statuses)

    def learning_arms(self) -> dict[tuple[str, str], Arm]:
        """Arms whose policy learns from feedback (a bandit), by (experiment, variant)."""
        table = self._table
        if table is None:
            return {}
        return {
            key: arm
            for key, arm in table.arms.items()
            if arm.fallback is None and isinstance(arm.policy, SoftmaxBandit)
        }


def _status(record: ExperimentRecord, arms: dict[tuple[str, str], Arm]) -> ExperimentStatus:
    config = record.config
    variants = []
    for variant in config.variants:
        arm = arms[(config.name, variant.name)]
        variants.append(
            VariantStatus(
                name=variant.name,
                model=f"{arm.bundle.name}/{arm.bundle.version}",
                policy=arm.spec,
                fallback=arm.fallback,
            )
        )
    return ExperimentStatus(
        name=config.name,
        layer=config.layer,
        type=config.type,
        traffic=config.traffic,
        variants=variants,
    )


async def refresh_forever(
    runtime: ExperimentRuntime, every_s: float, learn: Callable[[], object] | None = None
) -> None:
    """Apply experiment changes within ``every_s`` seconds, then ``learn`` (both in a thread)."""
    while True:
        try:
            if runtime.due():
                await run_in_threadpool(runtime.refresh)
            if learn is not None:
                await run_in_threadpool(runtime.exclusive, learn)
        except Exception:  # keep following the store: one failed round must not stop it
            log.exception("following the experiment store failed")
        await asyncio.sleep(every_s)
