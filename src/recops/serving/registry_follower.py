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

At start-up each worker looks once before it serves (at most
:data:`START_TIMEOUT_S`), so a server never starts on the version policy's
choice while the alias names another. An unset alias, an unreachable registry or
a failed switch are logged once each, and the server keeps what it serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext
from recops.serving.coordination import switch_everywhere
from recops.serving.logs import AUDIT
from recops.serving.repository import ModelLoadError, ModelNotFoundError

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
    registry:
        The MLflow registry.
    alias:
        The alias followed (``champion``).
    repository:
        The server's model repository (versions are materialised there).
    configured_name:
        The server's ``model_name`` setting.
    """

    def __init__(
        self, registry: Registry, alias: str, repository: str | Path, configured_name: str | None
    ) -> None:
        self.registry = registry
        self.alias = alias
        self.repository = repository
        self.configured_name = configured_name
        #: (registry version, repository version) of the last lookup.
        self.seen: tuple[str, str] | None = None
        self._failed: dict[str, float] = {}
        self._last_problem: str | None = None

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
        return names[0]

    def target(self, name: str) -> str | None:
        """The repository version the alias points at (materialised), None when unset."""
        from recops.registry.materialise import materialise_version

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


def _others_differ(ctx: ServerContext, label: str) -> bool:
    """Whether a live worker says it serves something else (e.g. its start-up look failed)."""
    group = ctx.group
    return group is not None and any(
        w.serving is not None and w.serving != label for w in group.workers()
    )


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


async def _follow_forever(ctx: ServerContext, follower: AliasFollower, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await follow_once(ctx, follower)
        except Exception as exc:  # keep following: the registry may be back next time
            follower.problem(f"{type(exc).__name__}: {exc}")


async def follow_alias(ctx: ServerContext) -> list[asyncio.Task[None]]:
    """Look once now, then keep following (worker 0 only); the tasks to cancel at shutdown."""
    settings = ctx.settings
    if settings.follow_alias is None:
        return []
    from recops.registry import Registry

    registry = await run_in_threadpool(Registry, settings.registry_uri)
    follower = AliasFollower(
        registry, settings.follow_alias, settings.model_repository, settings.model_name
    )
    leader = settings.worker_index in (None, 0)
    try:
        # At start-up every worker switches itself (the others start at the same time,
        # so a two-phase switch would wait for them); the leader's loop does the rest.
        await asyncio.wait_for(follow_once(ctx, follower, everywhere=False), START_TIMEOUT_S)
    except Exception as exc:
        follower.problem(f"at start-up: {type(exc).__name__}: {exc}")
    if not leader:
        return []
    return [asyncio.create_task(_follow_forever(ctx, follower, settings.follow_interval_s))]
