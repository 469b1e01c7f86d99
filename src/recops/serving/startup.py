"""What a worker serves when it starts: its version policy's choice, or its alias's.

Without ``follow_alias`` the version policy (``latest``, or ``pinned``) names the
version. A server with nothing to serve (an empty repository, a version that does
not load) starts anyway: ``/readyz`` says why, and the admin API can load one.

With ``follow_alias`` the policy is not applied: the worker serves the version the
registry alias names, or nothing until it names one
(:mod:`recops.serving.registry_follower`).
"""

from __future__ import annotations

import logging

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext
from recops.serving.loaded_model import ModelLoadError
from recops.serving.registry_follower import AliasFollower, start_following
from recops.serving.repository import NOTHING_LOADED, ModelNotFoundError

log = logging.getLogger("recops.serving")


async def serve_at_start(ctx: ServerContext) -> AliasFollower | None:
    """Serve the first version; returns the alias follower of a server that follows one."""
    settings = ctx.settings
    if settings.follow_alias is not None:
        return await start_following(ctx)
    try:
        bundle = await run_in_threadpool(
            ctx.manager.apply_policy,
            settings.model_name,
            settings.version_policy,
            settings.pinned_version,
        )
        ctx.metrics.set_serving(bundle.name, bundle.version)
    except (ModelNotFoundError, ModelLoadError, ValueError) as exc:
        ctx.manager.unserved = f"{NOTHING_LOADED}: {exc}"
        log.error("no model served at start-up: %s", exc)
    return None
