"""The server follows a registry alias: when ``champion`` moves, it serves the new version.

With ``follow_alias`` set (``RECOPS_FOLLOW_ALIAS=champion``), the server asks the
MLflow registry (``registry_uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded
store under ``$RECOPS_HOME``) every ``follow_interval_s`` which version the alias
points at, makes it a folder of its model repository if it is not one yet
(:func:`recops.registry.materialise.materialise`), and switches to it through the
server's atomic switch; with several workers, worker 0 alone follows and switches
every worker in two phases (:func:`~recops.serving.coordination.switch_everywhere`:
all load, then all flip at one moment), so no request fails and no reply mixes
versions. The alias decides what is served: a version switched by hand is
switched back at the next look. A version that fails to load is tried again only
after :data:`RETRY_S` (or when the alias moves); the old one keeps serving.

**Only a version the alias named is served.** A following server does not apply
its version policy: at start-up each worker looks once before it serves (at most
:data:`START_TIMEOUT_S`) and serves what the alias names. Until the alias has named
a version that this server could load (it is unset: no champion promoted yet; the
registry cannot be reached; its version does not load), nothing is served:
``/readyz`` answers 503 with the reason (``alias 'champion' of model 'news' is not
set in the registry; ...``), so a load balancer keeps traffic away, and the
recommendation routes answer 503 with the same reason and ``Retry-After`` (the
follow interval), through the path of a server with no model loaded
(:attr:`~recops.serving.repository.ModelManager.unserved`); ``/healthz`` stays 200.
The first look that finds the alias set switches every worker to its version (a
worker that serves nothing counts as one to switch), and the server turns ready.
An admin switch is obeyed meanwhile (an operator's explicit, audited choice) until
the alias names a version.

**Once the alias's version is served**, a later problem (the alias deleted, the
registry unreachable, a new version that fails to load) keeps the version followed
last serving. Each problem is logged once, until another one or a success replaces
it. The gauge ``recops_alias_followed`` (on the worker that follows) is 1 while the
server serves what the alias named at the last look, 0 otherwise; its labels name
the alias, the model, and the registry and repository versions the alias resolved
to last (empty before it ever resolved).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.concurrency import run_in_threadpool
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from recops.serving.context import ServerContext
from recops.serving.coordination import switch_everywhere
from recops.serving.loaded_model import ModelLoadError
from recops.serving.logs import AUDIT
from recops.serving.repository import ModelNotFoundError

if TYPE_CHECKING:
    from recops.registry import Registry

log = logging.getLogger("recops.serving")
audit = logging.getLogger(AUDIT)

#: A version that failed to load is not tried again for this long (unless the alias moves).
RETRY_S = 30.0
#: The longest a worker waits for the registry before it serves, at start-up.
START_TIMEOUT_S = 60.0


class AliasFollower:
    """Which repository version the alias names now, and what went wrong last.

    Parameters
    ----------
    registry_uri:
        The MLflow registry (``None``: ``$MLFLOW_TRACKING_URI``, else the embedded
        store); opened at the first look that can (it may be down at start-up).
    alias:
        The alias followed (``champion``).
    repository:
        The server's model repository (versions are materialised there).
    configured_name:
        The server's ``model_name`` setting.
    """

    def __init__(
        self,
        registry_uri: str | None,
        alias: str,
        repository: str | Path,
        configured_name: str | None,
    ) -> None:
        self.registry_uri = registry_uri
        self.alias = alias
        self.repository = repository
        self.configured_name = configured_name
        #: The model followed, once known.
        self.name: str | None = configured_name
        #: (registry version, repository version) of the last lookup.
        self.seen: tuple[str, str] | None = None
        self._registry: Registry | None = None
        self._failed: dict[str, float] = {}
        self._last_problem: str | None = "no look at the registry yet"

    @property
    def registry(self) -> Registry:
        """The MLflow registry (opened on first use)."""
        if self._registry is None:
            from recops.registry import Registry

            self._registry = Registry(self.registry_uri)
        return self._registry

    def model_name(self, serving: str | None) -> str:
        """The setting, else the served model, else the repository's or registry's only one."""
        if self.configured_name is not None:
            return self.configured_name
        if serving is not None:
            return serving
        from recops.serving.repository import ModelRepository

        names = list(ModelRepository(self.repository).models()) or self.registry.models()
        if len(names) != 1:
            raise ModelNotFoundError(
                f"{len(names)} models ({', '.join(names) or 'none'}) to follow alias "
                f"{self.alias!r} of: set model_name"
            )
        self.name = names[0]
        return names[0]

    def target(self, name: str) -> str | None:
        """The repository version the alias points at (materialised), None when unset."""
        from recops.registry.materialise import materialise_version

        self.name = name
        found = self.registry.alias(name, self.alias)
        if found is None:
            self.problem(f"alias {self.alias!r} of model {name!r} is not set in the registry")
            return None
        if self.seen is not None and self.seen[0] == found.version:
            return self.seen[1]
        folder = materialise_version(self.registry, found, self.repository)
        self.seen = (found.version, folder)
        self._failed.clear()  # the alias moved: every version gets a fresh try
        return folder

    def may_try(self, version: str) -> bool:
        """False while a version that failed to load waits for its retry."""
        failed = self._failed.get(version)
        return failed is None or time.monotonic() - failed >= RETRY_S

    def failed(self, version: str, problem: str) -> None:
        """Remember a version that did not load."""
        self._failed[version] = time.monotonic()
        self.problem(problem)

    def problem(self, message: str | None) -> None:
        """Log a problem once (until another one, or success, replaces it)."""
        if message is not None and message != self._last_problem:
            log.error("following alias %r: %s", self.alias, message)
        self._last_problem = message

    def failure(self, detail: str) -> str:
        """What went wrong in a look, naming the alias (and the model, once known)."""
        of = "" if self.name is None else f" of model {self.name!r}"
        return f"alias {self.alias!r}{of}: {detail}"

    @property
    def resolved(self) -> bool:
        """Whether the server serves what the alias named at the last look."""
        return self.seen is not None and self._last_problem is None

    def unserved(self) -> str:
        """Why a server that serves nothing serves nothing (``/readyz``, the 503s)."""
        problem = self._last_problem or f"alias {self.alias!r} names no version yet"
        return f"{problem}; nothing is served until alias {self.alias!r} names a version"

    def metrics(self) -> Iterator[Metric]:
        """``recops_alias_followed`` (for :meth:`~recops.serving.metrics.ServerMetrics.watch`)."""
        family = GaugeMetricFamily(
            "recops_alias_followed",
            "1 while the server serves the version its registry alias named at the last "
            "look, 0 while not (unset, unreadable, or its version did not load: the log "
            "says why, and /readyz while nothing is served); the labels name the version "
            "it resolved to last.",
            labels=["alias", "model", "registry_version", "version"],
        )
        registry_version, version = self.seen or ("", "")
        labels = [self.alias, self.name or "", registry_version, version]
        family.add_metric(labels, 1.0 if self.resolved else 0.0)
        yield family


def _others_differ(ctx: ServerContext, label: str) -> bool:
    """Whether a live worker serves something else, or nothing (its start-up look failed)."""
    group = ctx.group
    return group is not None and any(w.serving != label for w in group.workers())


async def follow_once(ctx: ServerContext, follower: AliasFollower, everywhere: bool = True) -> None:
    """Serve what the alias names now, switching if needed: every worker, or this one."""
    serving = ctx.manager.serving
    name = await run_in_threadpool(follower.model_name, None if serving is None else serving.name)
    version = await run_in_threadpool(follower.target, name)
    if version is None or not follower.may_try(version):
        return
    here = serving is not None and (serving.name, serving.version) == (name, version)
    if here and not (everywhere and _others_differ(ctx, f"{name}/{version}")):
        follower.problem(None)
        return
    start = time.perf_counter()
    try:
        if everywhere:
            await switch_everywhere(ctx, name, version)
        else:
            bundle = await run_in_threadpool(ctx.manager.switch, name, version)
            ctx.metrics.set_serving(bundle.name, bundle.version)
    except (ModelLoadError, ModelNotFoundError) as exc:
        follower.failed(version, f"{name}/{version} did not load: {exc}")
        return
    follower.problem(None)
    seconds = round(time.perf_counter() - start, 3)
    audit.info(
        "alias %s → %s/%s: switched in %.3f s",
        follower.alias,
        name,
        version,
        seconds,
        extra={
            "action": "follow-alias",
            "model": name,
            "version": version,
            "actor": f"registry alias {follower.alias}",
            "outcome": "done",
            "seconds": seconds,
        },
    )


async def look(
    ctx: ServerContext,
    follower: AliasFollower,
    everywhere: bool = True,
    timeout_s: float | None = None,
) -> None:
    """:func:`follow_once`, never raising; a server that serves nothing then says why."""
    try:
        await asyncio.wait_for(follow_once(ctx, follower, everywhere), timeout_s)
    except Exception as exc:  # keep following: the registry may be back next time
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TimeoutError) and not str(exc):  # wait_for's own
            detail = f"no answer from the registry within {timeout_s} s"
        follower.problem(follower.failure(detail))
    ctx.manager.unserved = follower.unserved()


async def _follow_forever(ctx: ServerContext, follower: AliasFollower, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await look(ctx, follower)


async def start_following(ctx: ServerContext) -> AliasFollower:
    """The follower of ``follow_alias``, after the start-up look of this worker."""
    settings = ctx.settings
    assert settings.follow_alias is not None
    follower = AliasFollower(
        settings.registry_uri, settings.follow_alias, settings.model_repository, settings.model_name
    )
    if _leads(ctx):
        ctx.metrics.watch(follower.metrics)
    # At start-up every worker switches itself (the others start at the same time,
    # so a two-phase switch would wait for them); the leader's loop does the rest.
    await look(ctx, follower, everywhere=False, timeout_s=START_TIMEOUT_S)
    return follower


def follow_alias(ctx: ServerContext) -> list[asyncio.Task[None]]:
    """Keep following (worker 0 only); the tasks to cancel at shutdown."""
    if ctx.alias is None or not _leads(ctx):
        return []
    every = ctx.settings.follow_interval_s
    return [asyncio.create_task(_follow_forever(ctx, ctx.alias, every))]


def _leads(ctx: ServerContext) -> bool:
    return ctx.settings.worker_index in (None, 0)
